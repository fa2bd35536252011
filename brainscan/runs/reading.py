"""Reading runs: everything the Train page shows about a run folder, the list of runs and the run in progress.
A 'running' run whose trainer is gone is written back as 'crashed' (or 'finished' when its model is there)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from brainscan import config
from brainscan.errors import RunError
from brainscan.modelfolder import CARD_FILE, read_json
from brainscan.runfolder import (
    ACTIVE_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    LOG_FILE,
    METRICS_FILE,
    is_run_dir,
    read_status,
    update_status,
)
from brainscan.runs.process import killed_by, pid_alive, reap
from brainscan.training.progress import Progress, read_progress

TERMINAL_STATES = ("finished", "failed", "stopped", "crashed")  # and "queued": waiting for the slot
QUEUED = "queued"


@dataclass
class RunInfo:
    path: Path
    name: str
    state: str  # queued | running | finished | failed | stopped | crashed | unknown
    message: str = ""
    status: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    progress: Progress | None = None  # after the first epoch
    metrics: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    log_tail: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def queued(self) -> bool:
        return self.state == QUEUED

    @property
    def owner(self) -> str:
        return str(self.status.get("owner") or "")

    @property
    def complete(self) -> bool:
        """A finished run with a model (card.json is written last)."""
        return self.state == "finished" and (self.path / CARD_FILE).is_file()

    @property
    def started(self) -> float | None:
        return self.status.get("started")

    @property
    def elapsed_s(self) -> float | None:
        start = self.status.get("started")
        if not start:
            return None
        return float(self.status.get("ended") or time.time()) - float(start)

    @property
    def label(self) -> str:
        """Short text for pickers: 'name (state)'."""
        return f"{self.name} ({self.state})"


def log_tail(run_dir: str | os.PathLike, lines: int = 20, max_bytes: int = 16384) -> list[str]:
    """The last lines of log.txt (reads at most max_bytes from the end; never blocks on a big log)."""
    path = Path(run_dir) / LOG_FILE
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    out = [ln.rstrip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    if size > max_bytes and out:
        out = out[1:]  # the first line is probably cut
    return out[-lines:]


def _crash_message(run_dir: Path) -> str:
    how = "The training process ended unexpectedly"
    sig = killed_by(run_dir)
    if sig:
        how += f" (killed by {sig})"
    tail = log_tail(run_dir, 1)
    return f"{how}; last log line: {tail[-1]}" if tail else f"{how}; the log is empty."


def run_info(run_dir: str | os.PathLike) -> RunInfo:
    """Everything the page shows about one run. A 'running' run whose process is gone becomes 'crashed'."""
    path = Path(run_dir)
    status = read_status(path)
    has_card = (path / CARD_FILE).is_file()
    state = str(status.get("state") or ("finished" if has_card else "unknown"))
    if state == "running" and not pid_alive(status.get("pid"), path):
        status = read_status(path)  # the process is gone: nobody writes any more
        if status.get("state", "running") == "running":
            if has_card:
                status = update_status(path, state="finished", ended=time.time(),
                                       message="The process ended right after saving the model.")
            else:
                status = update_status(path, state="crashed", ended=time.time(), message=_crash_message(path))
        state = str(status.get("state"))
    if not state or state not in TERMINAL_STATES + ("running", QUEUED):
        state = "finished" if has_card else (state or "unknown")
    return RunInfo(
        path=path, name=path.name, state=state, message=str(status.get("message") or ""), status=status,
        config=read_json(path / CONFIG_FILE), progress=read_progress(path),
        metrics=read_json(path / METRICS_FILE), card=read_json(path / CARD_FILE) if has_card else {},
        history=read_json(path / HISTORY_FILE), log_tail=log_tail(path))


def run_dirs(root: Path) -> list[Path]:
    """The run folders in root (not uploads/, not hidden leftovers)."""
    return [p for p in root.iterdir() if is_run_dir(p)] if root.is_dir() else []


def list_runs(runs_dir: str | os.PathLike | None = None, owner: str | None = None) -> list[RunInfo]:
    """All run folders, newest first; with owner, only the runs that session started."""
    root = config.runs_dir(runs_dir)
    reap()
    infos = [run_info(p) for p in run_dirs(root)]
    if owner is not None:
        infos = [i for i in infos if i.owner == owner]
    return sorted(infos, key=lambda r: (r.started or r.path.stat().st_mtime, r.name), reverse=True)


def active_run(runs_dir: str | os.PathLike | None = None) -> RunInfo | None:
    """The run in progress, if any (named in .active.json, or any folder whose process still runs)."""
    root = config.runs_dir(runs_dir)
    active = read_json(root / ACTIVE_FILE)
    if active.get("run_dir") and Path(active["run_dir"]).is_dir():
        info = run_info(active["run_dir"])
        if info.running:
            return info
    for p in run_dirs(root):
        if read_status(p).get("state") == "running":
            info = run_info(p)
            if info.running:
                return info
    return None


def check_owner(info: RunInfo, owner: str | None, verb: str) -> None:
    """With owner (hosted mode), only that session's run may be stopped or promoted."""
    if owner is not None and info.owner != owner:
        raise RunError(f"This run belongs to another session; it was not {verb}.")
