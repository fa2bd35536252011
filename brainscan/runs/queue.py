"""The training queue of hosted mode: one run trains at a time, the others wait as 'queued' (first come, first
served) and start when the slot is free; a run past its time limit is stopped, and so are the runs of a visitor
who has gone (runs.visitors). advance_queue() does all three and is called by the Train page every few seconds, by
a thread of the app's server (keep_queue_moving) and by the keeper process (runs.keeper), which outlives a restart
of the server.

Who may join the queue is decided in one place, must_wait(): a bounded queue and a number of waiting or running
runs per owner (hosting.Limits). An owner is a visitor (one browser, all its tabs), so tabs do not multiply it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brainscan import config, hosting
from brainscan.errors import RunBusyError, RunError
from brainscan.modelfolder import read_json, write_json
from brainscan.runfolder import CONFIG_FILE, STATUS_FILE, read_status, update_status
from brainscan.runs import visitors
from brainscan.runs.process import launch, locked, spawn_keeper, terminate
from brainscan.runs.reading import QUEUED, RunInfo, active_run, run_dirs, run_info

WALL_GRACE_S = 120.0  # a run past its time limit by this much is stopped by the manager (training/run.py stops itself)


def waiting_runs(root: Path) -> list[RunInfo]:
    """Waiting runs, first come first."""
    waiting = [run_info(p) for p in run_dirs(root) if read_status(p).get("state") == QUEUED]
    return sorted(waiting, key=lambda r: (float(r.status.get("queued_at") or 0), r.name))


def queue_position(run_dir: str | os.PathLike) -> int | None:
    """1 for the next run to start, 2 for the one after, ...; None when the run is not waiting."""
    path = Path(run_dir)
    for k, info in enumerate(waiting_runs(path.parent), start=1):
        if info.path == path:
            return k
    return None


def must_wait(root: Path, busy: RunInfo | None, owner: str | None, limits: hosting.Limits | None) -> bool:
    """Whether a new run of owner waits in the queue (True) or may start at once (False); RunBusyError when the
    limits refuse it: the owner has as many runs waiting or training as allowed, or the queue is full.
    Call with root locked (busy: the active run)."""
    waiting = waiting_runs(root)
    if owner is not None and limits is not None and limits.queue_per_owner is not None:
        mine = [r for r in waiting + ([busy] if busy else []) if r.owner == owner]
        if len(mine) >= limits.queue_per_owner:
            raise RunBusyError(f"You already have a run waiting or training in this browser ({mine[0].name}); one "
                               "run per visitor (a browser, however many tabs) may wait or train at a time. Stop it "
                               "or take it out of the queue, from any tab, before starting another.")
    if busy is None and not waiting:
        return False
    if limits is not None and limits.queue_total is not None and len(waiting) >= limits.queue_total:
        raise RunBusyError(f"The training queue is full ({len(waiting)} runs waiting); please try again later.")
    return True


def enqueue(run_dir: Path, cfg: dict[str, Any], owner: str | None) -> None:
    """Make the new folder run_dir a waiting run (its config kept for the start)."""
    write_json(run_dir / CONFIG_FILE, cfg)
    write_json(run_dir / STATUS_FILE, {"state": QUEUED, "queued_at": time.time(), "owner": owner or "",
                                       "updated": time.time()})


def leave_queue(run_dir: Path) -> None:
    """A waiting run leaves the queue ('stopped' before it started)."""
    with locked(run_dir.parent):
        if read_status(run_dir).get("state") == QUEUED:
            update_status(run_dir, state="stopped", ended=time.time(),
                          message="Taken out of the queue before it started.")


def live_runs(root: Path) -> bool:
    """Whether a run waits or trains in root (what the keeper is there for)."""
    return any(read_status(p).get("state") in (QUEUED, "running") for p in run_dirs(root))


def advance_queue(runs_dir: str | os.PathLike | None = None, grace_s: float | None = None,
                  vanished_after_s: float | None = None) -> RunInfo | None:
    """Keep the slot moving (called by the Train page every few seconds): with vanished_after_s, end the runs of
    visitors not seen for that long (runs.visitors); stop the active run when it is past its time limit plus
    grace_s (default WALL_GRACE_S); start the first waiting run when the slot is free. Returns the run started,
    if any."""
    root = config.runs_dir(runs_dir)
    if vanished_after_s is not None and root.is_dir():
        visitors.end_vanished(root, vanished_after_s)
    busy = active_run(root)
    if busy is not None:
        limit = busy.config.get("time_limit_s")
        grace = WALL_GRACE_S if grace_s is None else grace_s
        if limit and (busy.elapsed_s or 0) > float(limit) + grace:
            terminate(busy.path, timeout=10)
            update_status(busy.path, message=f"Stopped at the time limit of {int(limit) // 60} minutes.")
        return None
    with locked(root):
        if active_run(root) is not None:
            return None
        waiting = waiting_runs(root)
        if not waiting:
            return None
        nxt = waiting[0]
        try:
            launch(root, nxt.path, read_json(nxt.path / CONFIG_FILE))
        except RunError:
            pass  # launch marked the run 'failed'; the next call starts the one after it
        return run_info(nxt.path)


def keep_queue_moving(runs_dir: str | os.PathLike | None = None, every_s: float = 5.0,
                      stop: threading.Event | None = None, *, vanished_after_s: float | None = None,
                      on_tick: Callable[[Path], Any] | None = None, keeper: bool = False) -> threading.Thread:
    """Call advance_queue every every_s seconds from a daemon thread of the app's server process, so that a
    waiting run starts (and one past its time limit, or of a vanished visitor, stops) while no visitor has the
    Train page open. on_tick(root) runs first on each tick (the app records the visitors it still has connected);
    with keeper, the keeper process (runs.keeper) is started whenever a run waits or trains and none is alive, so
    that the queue moves on even while this server is down. The runs folder is fixed when the thread starts (it
    may not exist yet); the thread ends when stop is set or when the folder, once there, is removed."""
    root = config.runs_dir(runs_dir)
    stop = stop or threading.Event()

    def loop() -> None:
        seen = False
        while not stop.wait(every_s):
            if not root.is_dir():
                if seen:
                    return
                continue
            seen = True
            try:
                if on_tick is not None:
                    on_tick(root)
                if vanished_after_s is None:
                    advance_queue(root)
                else:
                    advance_queue(root, vanished_after_s=vanished_after_s)
                if keeper and live_runs(root):
                    spawn_keeper(root)
            except Exception:  # noqa: BLE001 - a bad run folder must not end the keeper; the page shows it
                logging.getLogger("brainscan.runs").exception("advancing the training queue failed")

    thread = threading.Thread(target=loop, name=f"brainscan-training-queue:{root}", daemon=True)
    thread.start()
    return thread
