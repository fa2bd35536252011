"""The queue keeper process: ``python -m brainscan.runs.keeper [--runs-dir D] [--every S] [--idle-exit S | --forever]``.

Streamlit runs no code of the app when its server starts (only when a browser opens a page), so a thread of the
server cannot move the queue after a restart until someone visits. In hosted mode the server therefore starts this
process whenever a run waits or trains (runs.process.spawn_keeper, in its own session like the trainers): it
outlives a restart of the server, and every few seconds it ends the runs of visitors who have gone, stops a run
past its time limit, starts the next waiting run (queue.advance_queue) and, once a minute, runs the janitor with
the hosted-mode limits. One keeper per runs folder (an flock on runs/.keeper.lock); it ends once nothing has
waited or trained for --idle-exit seconds, or never with --forever (for a service started beside the server, so
that even a restart of the whole machine does not wait for a visitor).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import sys
import time
from pathlib import Path

from brainscan import config, hosting, janitor
from brainscan.runs import process
from brainscan.runs.process import KEEPER_LOCK, reap
from brainscan.runs.queue import advance_queue, live_runs


def keep(root: Path, every_s: float = 2.0, idle_exit_s: float | None = 60.0, janitor_every_s: float = 60.0) -> int:
    """The keeper's loop (returns when idle long enough, or when root is removed). Call with the lock held."""
    log = logging.getLogger("brainscan.runs.keeper")
    idle_since = time.monotonic()
    last_sweep = 0.0
    while root.is_dir():
        settings = hosting.settings()
        try:
            advance_queue(root, vanished_after_s=settings.limits.visitor_grace_s if settings.hosted else None)
            reap()
            if settings.hosted and time.monotonic() - last_sweep >= janitor_every_s:
                last_sweep = time.monotonic()
                storage = settings.storage
                janitor.sweep(root, storage.max_age_s, storage.max_total_mb, visitor_mb=storage.visitor_mb)
            if live_runs(root):
                idle_since = time.monotonic()
        except Exception:  # noqa: BLE001 - one bad run folder must not end the keeper
            log.exception("the keeper's round failed")
        if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
            return 0
        time.sleep(every_s)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m brainscan.runs.keeper", description=__doc__.split("\n\n")[1])
    p.add_argument("--runs-dir", default=None, help="the runs folder (default: $BRAINSCAN_RUNS_DIR or runs/)")
    p.add_argument("--every", type=float, default=2.0, metavar="S", help="seconds between rounds (2)")
    p.add_argument("--idle-exit", type=float, default=60.0, metavar="S",
                   help="end once nothing has waited or trained for S seconds (60)")
    p.add_argument("--forever", action="store_true", help="never end by itself (a service beside the server)")
    p.add_argument("--trainer", default="", help=argparse.SUPPRESS)  # JSON argv: the server's TRAINER (tests)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.trainer:
        process.TRAINER = [str(a) for a in json.loads(args.trainer)]
    root = config.runs_dir(args.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / KEEPER_LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another keeper looks after this folder
        return keep(root, args.every, None if args.forever else args.idle_exit)


if __name__ == "__main__":
    sys.exit(main())
