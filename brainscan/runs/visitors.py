"""Hosted mode's visitors as the run manager sees them: when each was last seen with a tab open, and the end of the
waiting and running runs of a visitor who has gone.

A visitor is an owner id (hosting.visitor_id: one per browser). <runs>/.visitors/<id> is touched whenever the
visitor is seen (its pages rerun, or the app's server finds one of its tabs still connected); its mtime is the
last sighting. A run whose owner has not been seen for the grace period is ended: taken out of the queue when it
waits, stopped when it trains. Files of visitors not seen for a day are forgotten.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from brainscan.runfolder import read_status, update_status
from brainscan.runs.process import locked, terminate
from brainscan.runs.reading import QUEUED, RunInfo, run_dirs, run_info

VISITORS = ".visitors"
FORGET_AFTER_S = 24 * 3600
_ID = re.compile(r"^[0-9a-f]{8,64}$")


def _file(root: Path, owner: str) -> Path | None:
    return root / VISITORS / owner if _ID.match(owner or "") else None


def seen(runs_dir: str | os.PathLike, owner: str, now: float | None = None) -> None:
    """Record that owner has a tab open now."""
    path = _file(Path(runs_dir), owner)
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        if now is not None:
            os.utime(path, (now, now))


def last_seen(runs_dir: str | os.PathLike, owner: str) -> float | None:
    path = _file(Path(runs_dir), owner)
    if path is None:
        return None
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _reference(root: Path, info: RunInfo) -> float:
    """The later of the owner's last sighting and the visitor's asking for the run (when it joined the queue, else
    when it started): a waiting run that starts after its visitor has gone gets no fresh grace."""
    asked = float(info.status.get("queued_at") or info.status.get("started") or 0.0)
    return max(last_seen(root, info.owner) or 0.0, asked)


def vanished_message(grace_s: float) -> str:
    minutes = max(1, round(grace_s / 60))
    return (f"Ended because no tab of its visitor's browser was open for {minutes} minute"
            f"{'s' if minutes != 1 else ''}.")


def end_vanished(runs_dir: str | os.PathLike, grace_s: float, now: float | None = None) -> list[str]:
    """End the waiting and running runs of owners not seen for grace_s seconds; returns the names of the runs
    ended. Runs without an owner (local mode, a shell) are left alone."""
    root = Path(runs_dir)
    now = time.time() if now is None else now
    ended: list[str] = []
    for path in run_dirs(root):
        state = read_status(path).get("state")
        if state not in (QUEUED, "running"):
            continue
        info = run_info(path)
        if not info.owner or info.state not in (QUEUED, "running") or now - _reference(root, info) <= grace_s:
            continue
        message = vanished_message(grace_s)
        if info.queued:
            with locked(root):
                if read_status(path).get("state") == QUEUED:
                    update_status(path, state="stopped", ended=time.time(), message=message)
                    ended.append(info.name)
        else:
            terminate(path, timeout=10)
            update_status(path, message=message)
            ended.append(info.name)
    _forget_old(root, now)
    return ended


def _forget_old(root: Path, now: float) -> None:
    folder = root / VISITORS
    if not folder.is_dir():
        return
    for f in folder.iterdir():
        with contextlib.suppress(OSError):
            if now - f.stat().st_mtime > FORGET_AFTER_S:
                f.unlink()
