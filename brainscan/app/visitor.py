"""Who the visitor is (hosted mode), seen from the pages: one browser, whichever of its tabs.

Streamlit sets one cookie per browser, its XSRF cookie `_streamlit_xsrf` (a random token; the same in every tab;
the mask around it changes with each response, the token does not), and sends it with the websocket that every
page session opens, so `st.context.cookies` has it in every tab. hosting.visitor_id turns it into an id under a
secret of the runs folder; without the cookie (XSRF protection off, a client that sends none, AppTest) the
session's own random token is the visitor, as before.

The server's queue thread (runs.keep_queue_moving, started here once per process and runs folder) records which
visitors still have a tab connected: every page session registers its id here, and on each tick the sessions
that Streamlit still has connected mark their visitors as seen (runs.visitors).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import streamlit as st

from brainscan import hosting, runs
from brainscan.runs import visitors

_SESSIONS: dict[str, tuple[str, str]] = {}  # Streamlit session id -> (runs folder, visitor id)
_LOCK = threading.Lock()
SEEN_EVERY_S = 10.0  # a rerunning page marks its visitor at most this often


def _cookie() -> str:
    """The browser's XSRF cookie as this session's websocket brought it ('' without one)."""
    try:
        return str(st.context.cookies.get(hosting.XSRF_COOKIE) or "")
    except Exception:  # noqa: BLE001 - no client (AppTest, bare mode)
        return ""


def visitor_id() -> str:
    """This browser's visitor id (the session's own id when the browser sent no usable cookie); kept in the
    session, so the cookie is read once per session."""
    state = st.session_state
    if "_brainscan_visitor" not in state:
        vid = hosting.visitor_id(_cookie(), hosting.server_secret(runs.get_runs_dir()))
        state["_brainscan_visitor"] = vid or runs.session_owner(state)
    return str(state["_brainscan_visitor"])


def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def register() -> str:
    """Note that this session belongs to the visitor and that the visitor is here now; returns its id."""
    vid = visitor_id()
    root = runs.get_runs_dir()
    sid = _session_id()
    if sid is not None:
        with _LOCK:
            _SESSIONS[sid] = (str(root), vid)
    state = st.session_state
    if time.monotonic() - float(state.get("_brainscan_seen_at", -1e18)) >= SEEN_EVERY_S:
        state["_brainscan_seen_at"] = time.monotonic()
        visitors.seen(root, vid)
    return vid


def mark_connected(root: Path) -> int:
    """Mark every visitor with a session still connected to this server as seen (the queue thread's tick);
    forget sessions Streamlit no longer has. Returns the number of connected sessions of root."""
    from streamlit import runtime

    if not runtime.exists():
        return 0
    rt = runtime.get_instance()
    present: set[str] = set()
    with _LOCK:
        for sid, (folder, vid) in list(_SESSIONS.items()):
            if folder != str(root):
                continue
            if rt.is_active_session(sid):
                present.add(vid)
            elif rt.get_app_session(sid) is None:
                del _SESSIONS[sid]  # closed for good (a disconnected one may come back within its TTL)
    for vid in present:
        visitors.seen(root, vid)
    return len(present)


@st.cache_resource(show_spinner=False)
def _queue_thread(runs_dir: str) -> threading.Thread:
    limits = hosting.settings().limits
    return runs.keep_queue_moving(runs_dir, vanished_after_s=limits.visitor_grace_s, on_tick=mark_connected,
                                  keeper=True)


def keep_training_queue_moving() -> None:
    """Hosted mode: one thread per server process and runs folder moves the training queue on and records who is
    still here, whichever page the visitors have open; this session's visitor is registered."""
    if hosting.settings().hosted:
        _queue_thread(str(runs.get_runs_dir()))
        register()
