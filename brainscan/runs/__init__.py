"""Run manager for the Train page: start, watch, stop and promote training runs. No TensorFlow here.

A run is a folder runs/<YYYYmmdd-HHMMSS>-<name>/ filled by ``python -m brainscan train`` running as a
subprocess in its own session (brainscan.runfolder names its files). This package only starts that
process, reads the folder, signals the process group and copies finished models into models/:

    reading.py    RunInfo, run_info, list_runs, active_run, log_tail
    process.py    the trainer's processes: TRAINER (the command), launch, pid_alive, signals, terminate
    control.py    start_run and stop_run for a session (settings checked, owners)
    queue.py      hosted mode's queue and its keeper thread: advance_queue, keep_queue_moving, queue_position
    promotion.py  promote

One run at a time per server: runs/.active.json names the running run and its pid; any run folder
whose status says "running" with a live brainscan process also counts (e.g. one started from a shell).
"""

from __future__ import annotations

from brainscan.config import MODELS_ENV, REPO_ROOT, RUNS_ENV, models_dir, resolve_data_path, runs_dir
from brainscan.errors import RunBusyError, RunError
from brainscan.runfolder import ACTIVE_FILE, LOCK_FILE, UPLOADS, slugify
from brainscan.runs.control import config_dict, session_owner, start_run, stop_run
from brainscan.runs.process import pid_alive, train_command
from brainscan.runs.promotion import promote
from brainscan.runs.queue import WALL_GRACE_S, advance_queue, keep_queue_moving, queue_position
from brainscan.runs.reading import QUEUED, TERMINAL_STATES, RunInfo, active_run, list_runs, log_tail, run_info

get_runs_dir = runs_dir  # the argument, else $BRAINSCAN_RUNS_DIR, else <repo>/runs
get_models_dir = models_dir  # the argument, else $BRAINSCAN_MODELS_DIR, else <repo>/models

__all__ = ["ACTIVE_FILE", "LOCK_FILE", "MODELS_ENV", "QUEUED", "REPO_ROOT", "RUNS_ENV", "TERMINAL_STATES", "UPLOADS",
           "WALL_GRACE_S", "RunBusyError", "RunError", "RunInfo", "active_run", "advance_queue", "config_dict",
           "get_models_dir", "get_runs_dir", "keep_queue_moving", "list_runs", "log_tail", "pid_alive", "promote",
           "queue_position", "resolve_data_path", "run_info", "session_owner", "slugify", "start_run", "stop_run",
           "train_command"]
