"""Starting and stopping runs for a session: the settings checked, a new run folder, the trainer started at once
or the run queued (hosted mode), and stopping a run or taking it out of the queue. Runs belong to the session
that started them where an owner is given."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from brainscan import config, hosting
from brainscan.config import resolve_data_path
from brainscan.errors import RunBusyError, RunError
from brainscan.modelfolder import write_json
from brainscan.runfolder import STATUS_FILE, TRAIN_FLAGS, read_status, slugify
from brainscan.runs.process import launch, locked, terminate
from brainscan.runs.queue import enqueue, leave_queue, must_wait
from brainscan.runs.reading import QUEUED, RunInfo, active_run, check_owner, run_info
from brainscan.training.architectures import ARCHITECTURES


def config_dict(settings: Any) -> dict:
    """A run's settings (a TrainConfig, or a dict of some of its fields) as a dict, checked: a dataset (or a
    recipe), a registered architecture, and no key that is not a TrainConfig field (never dropped silently)."""
    cfg = asdict(settings) if is_dataclass(settings) and not isinstance(settings, type) else dict(settings)
    unknown = sorted(set(cfg) - {f.field for f in TRAIN_FLAGS})
    if unknown:
        raise RunError(f"Unknown training setting{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.")
    if not cfg.get("data") and not cfg.get("recipe"):
        raise RunError("Choose a dataset folder before starting a run.")
    arch = cfg.get("arch", "compact")
    if arch not in ARCHITECTURES:
        raise RunError(f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return cfg


def session_owner(state: Any) -> str:
    """The owner id of a Streamlit session (its session_state): a random token kept in the session, hashed."""
    if "_brainscan_owner_token" not in state:
        state["_brainscan_owner_token"] = secrets.token_urlsafe(24)
    return hosting.owner_id(str(state["_brainscan_owner_token"]))


def _busy_message(busy: RunInfo) -> str:
    p = busy.progress
    where = f" (epoch {p.epoch} of {p.epochs})" if p else ""
    return f"Run {busy.name} is still training{where}; wait for it to finish or stop it before starting another."


def _new_run_dir(root: Path, cfg: dict) -> Path:
    slug = slugify(cfg.get("name") or f"{cfg.get('arch', 'compact')}-{cfg.get('img_size', 128)}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{stamp}-{slug}"
    n = 2
    while run_dir.exists():
        run_dir = root / f"{stamp}-{slug}-{n}"
        n += 1
    run_dir.mkdir(parents=True)
    return run_dir


def start_run(settings: Any, runs_dir: str | os.PathLike | None = None, *, exclusive: bool = True,
              owner: str | None = None, limits: hosting.Limits | None = None,
              allowed_roots: list[str | os.PathLike] | None = None, queue: bool = False) -> Path:
    """Start the trainer (`python -m brainscan train`, see process.TRAINER) for settings (a dict or TrainConfig)
    in a new run folder.

    Returns the run folder at once; the training runs in its own process session, writing its
    output to <run>/log.txt. Raises RunBusyError if another run is in progress (unless exclusive=False).
    Hosted mode adds: owner (the session's id, recorded in status.json), limits (settings refused in one
    sentence each; wall time passed to training/run.py), allowed_roots (the data must lie inside one of them) and
    queue (when the slot is taken the run waits as 'queued'; advance_queue() starts it; one waiting or running
    run per owner and a bounded queue, as the limits say).
    """
    cfg = config_dict(settings)
    if limits is not None:
        problems = hosting.check_config(cfg, limits)
        if problems:
            raise RunError(" ".join(problems))
        if limits.wall_s:
            cfg["time_limit_s"] = int(limits.wall_s)
    if allowed_roots is not None:
        data = resolve_data_path(cfg.get("data") or "")
        if not any(data.is_relative_to(Path(r).resolve()) for r in allowed_roots):
            raise RunError("That dataset is not available here; choose one of the offered datasets or upload a zip.")
    root = config.runs_dir(runs_dir)
    with locked(root):
        busy = active_run(root)
        if queue:
            if must_wait(root, busy, owner, limits):
                run_dir = _new_run_dir(root, cfg)
                enqueue(run_dir, cfg, owner)
                return run_dir
        elif exclusive and busy is not None:
            raise RunBusyError(_busy_message(busy))
        run_dir = _new_run_dir(root, cfg)
        if owner is not None:
            write_json(run_dir / STATUS_FILE, {"owner": owner, "updated": time.time()})
        launch(root, run_dir, cfg)
    return run_dir


def stop_run(run_dir: str | os.PathLike, timeout: float = 30.0, owner: str | None = None) -> RunInfo:
    """Stop a run: SIGTERM to its process group (training/run.py stops after the current batch and saves no
    model), SIGKILL if it is still alive after timeout seconds. Returns the final RunInfo ('stopped',
    or 'finished' if it completed before the signal landed). A queued run leaves the queue. With owner, only
    that session's run (RunError otherwise)."""
    path = Path(run_dir)
    check_owner(run_info(path), owner, "stopped")
    if read_status(path).get("state") == QUEUED:
        leave_queue(path)
    else:
        terminate(path, timeout)
    return run_info(path)
