"""Run manager for the Train page: start, watch, stop and promote training runs. No TensorFlow here.

A run is a folder runs/<YYYYmmdd-HHMMSS>-<name>/ filled by ``python -m brainscan train`` running as a
subprocess in its own session (see brainscan.training.run for the files). This module only starts that
process, reads the folder, signals the process group and copies finished models into models/.

One run at a time per server: runs/.active.json names the running run and its pid; any run folder
whose status says "running" with a live brainscan process also counts (e.g. one started from a shell).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from brainscan import config, hosting, modelfolder
from brainscan.config import MODELS_ENV, REPO_ROOT, RUNS_ENV, resolve_data_path  # noqa: F401 - the environment variables, for callers
from brainscan.errors import RunBusyError, RunError  # noqa: F401 - raised here, caught by the Train page as runs.RunError
from brainscan.modelfolder import CARD_FILE, EXTRA_FILES, MODEL_FILES, WEIGHT_FILES, read_json, write_json
from brainscan.training.architectures import ARCHITECTURES
from brainscan.training.progress import LOG_FILE, Progress, read_progress

TERMINAL_STATES = ("finished", "failed", "stopped", "crashed")  # and "queued": waiting for the slot
ACTIVE_FILE = ".active.json"
LOCK_FILE = ".lock"
UPLOADS = "uploads"
QUEUED = "queued"
WALL_GRACE_S = 120.0  # a run past its time limit by this much is stopped by the manager (training/run.py stops itself)

# Popen objects of the runs this process started: polling them reaps the child (a finished child
# that nobody waits for stays a zombie, and os.kill(pid, 0) still succeeds on a zombie).
_PROCS: dict[str, subprocess.Popen] = {}


@dataclass
class RunInfo:
    path: Path
    name: str
    state: str  # running | finished | failed | stopped | crashed | unknown
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


# --- paths ------------------------------------------------------------------------------------

get_runs_dir = config.runs_dir  # the argument, else $BRAINSCAN_RUNS_DIR, else <repo>/runs
get_models_dir = config.models_dir  # the argument, else $BRAINSCAN_MODELS_DIR, else <repo>/models


def slugify(text: str, default: str = "run") -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-._")[:48]
    return slug or default


# --- small file helpers -----------------------------------------------------------------------

def _update_status(run_dir: Path, **fields: Any) -> dict:
    status = read_json(run_dir / "status.json")
    status.update(fields, updated=time.time())
    write_json(run_dir / "status.json", status)
    return status


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


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise start/stop between Streamlit sessions and processes (an flock on runs/.lock)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- processes --------------------------------------------------------------------------------

def pid_alive(pid: int | None, run_dir: str | os.PathLike | None = None) -> bool:
    """Whether pid is a live (not zombie) brainscan process; a reused pid does not count."""
    if not pid:
        return False
    proc = _PROCS.get(str(Path(run_dir))) if run_dir is not None else None
    if proc is not None and proc.pid == pid:
        return proc.poll() is None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rfind(")") + 2 :].startswith("Z"):
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"brainscan" in cmdline
    except OSError:  # no /proc (macOS): trust os.kill
        return True


def _signal_run(pid: int, sig: int) -> None:
    """Signal the run's process group (it is its own session leader) or, failing that, the process."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- reading runs -----------------------------------------------------------------------------

def _is_run_dir(p: Path) -> bool:
    return p.is_dir() and not p.name.startswith(".") and p.name != UPLOADS and (
        (p / "status.json").is_file() or (p / "config.json").is_file())


def _crash_message(run_dir: Path) -> str:
    proc = _PROCS.get(str(run_dir))
    how = "The training process ended unexpectedly"
    if proc is not None and proc.returncode is not None and proc.returncode < 0:
        with contextlib.suppress(ValueError):
            how += f" (killed by {signal.Signals(-proc.returncode).name})"
    tail = log_tail(run_dir, 1)
    return f"{how}; last log line: {tail[-1]}" if tail else f"{how}; the log is empty."


def _reap() -> None:
    """Collect finished children so they do not linger as zombies."""
    for proc in list(_PROCS.values()):
        proc.poll()


def run_info(run_dir: str | os.PathLike) -> RunInfo:
    """Everything the page shows about one run. A 'running' run whose process is gone becomes 'crashed'."""
    path = Path(run_dir)
    status = read_json(path / "status.json")
    has_card = (path / CARD_FILE).is_file()
    state = str(status.get("state") or ("finished" if has_card else "unknown"))
    if state == "running" and not pid_alive(status.get("pid"), path):
        status = read_json(path / "status.json")  # the process is gone: nobody writes any more
        if status.get("state", "running") == "running":
            if has_card:
                status = _update_status(path, state="finished", ended=time.time(),
                                        message="The process ended right after saving the model.")
            else:
                status = _update_status(path, state="crashed", ended=time.time(), message=_crash_message(path))
        state = str(status.get("state"))
    if not state or state not in TERMINAL_STATES + ("running", QUEUED):
        state = "finished" if has_card else (state or "unknown")
    return RunInfo(
        path=path, name=path.name, state=state, message=str(status.get("message") or ""), status=status,
        config=read_json(path / "config.json"), progress=read_progress(path),
        metrics=read_json(path / "metrics.json"), card=read_json(path / CARD_FILE) if has_card else {},
        history=read_json(path / "history.json"), log_tail=log_tail(path))


def list_runs(runs_dir: str | os.PathLike | None = None, owner: str | None = None) -> list[RunInfo]:
    """All run folders, newest first; with owner, only the runs that session started."""
    root = get_runs_dir(runs_dir)
    _reap()
    if not root.is_dir():
        return []
    infos = [run_info(p) for p in root.iterdir() if _is_run_dir(p)]
    if owner is not None:
        infos = [i for i in infos if i.owner == owner]
    return sorted(infos, key=lambda r: (r.started or r.path.stat().st_mtime, r.name), reverse=True)


def active_run(runs_dir: str | os.PathLike | None = None) -> RunInfo | None:
    """The run in progress, if any (named in .active.json, or any folder whose process still runs)."""
    root = get_runs_dir(runs_dir)
    active = read_json(root / ACTIVE_FILE)
    if active.get("run_dir") and Path(active["run_dir"]).is_dir():
        info = run_info(active["run_dir"])
        if info.running:
            return info
    if not root.is_dir():
        return None
    for p in root.iterdir():
        if _is_run_dir(p) and read_json(p / "status.json").get("state") == "running":
            info = run_info(p)
            if info.running:
                return info
    return None


# --- starting ---------------------------------------------------------------------------------

def _config_dict(config: Any) -> dict:
    cfg = asdict(config) if is_dataclass(config) and not isinstance(config, type) else dict(config)
    if not cfg.get("data"):
        raise RunError("Choose a dataset folder before starting a run.")
    arch = cfg.get("arch", "compact")
    if arch not in ARCHITECTURES:
        raise RunError(f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return cfg


def train_command(cfg: dict, run_dir: Path) -> list[str]:
    """The `python -m brainscan train` command line for a config dict (TrainConfig field names)."""
    cmd = [sys.executable, "-m", "brainscan", "train", "--data", str(resolve_data_path(cfg["data"])),
           "--out", str(run_dir)]
    options = {"arch": "--arch", "epochs": "--epochs", "img_size": "--img-size", "weights": "--weights",
               "batch_size": "--batch-size", "learning_rate": "--lr", "seed": "--seed", "patience": "--patience",
               "max_images": "--max-images", "name": "--name", "time_limit_s": "--time-limit"}
    for key, flag in options.items():
        value = cfg.get(key)
        if value is not None and value != "":
            cmd += [flag, str(value)]
    if cfg.get("augment") is False:
        cmd.append("--no-augment")
    return cmd


def session_owner(state: Any) -> str:
    """The owner id of a Streamlit session (its session_state): a random token kept in the session, hashed."""
    if "_brainscan_owner_token" not in state:
        state["_brainscan_owner_token"] = secrets.token_urlsafe(24)
    return hosting.owner_id(str(state["_brainscan_owner_token"]))


def _check_owner(info: RunInfo, owner: str | None, verb: str) -> None:
    if owner is not None and info.owner != owner:
        raise RunError(f"This run belongs to another session; it was not {verb}.")


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


def _launch(root: Path, run_dir: Path, cfg: dict) -> None:
    cmd = train_command(cfg, run_dir.resolve())
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    pythonpath = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    try:
        with open(run_dir / LOG_FILE, "ab") as log:
            log.write(("$ python " + " ".join(cmd[1:]) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    except OSError as err:
        _update_status(run_dir, state="failed", ended=time.time(), message=f"Could not start training: {err}")
        raise RunError(f"Could not start the training process: {err}") from err
    _PROCS[str(run_dir)] = proc
    # The child writes the same status when it starts; whichever comes second merges into the first.
    if read_json(run_dir / "status.json").get("state") == "running":
        _update_status(run_dir, pid=proc.pid)
    else:
        _update_status(run_dir, state="running", pid=proc.pid, started=time.time())
    write_json(root / ACTIVE_FILE, {"pid": proc.pid, "run_dir": str(run_dir), "started": time.time()})


def _queued(root: Path) -> list[RunInfo]:
    """Waiting runs, first come first."""
    if not root.is_dir():
        return []
    waiting = [run_info(p) for p in root.iterdir() if _is_run_dir(p)
               and read_json(p / "status.json").get("state") == QUEUED]
    return sorted(waiting, key=lambda r: (float(r.status.get("queued_at") or 0), r.name))


def queue_position(run_dir: str | os.PathLike) -> int | None:
    """1 for the next run to start, 2 for the one after, ...; None when the run is not waiting."""
    path = Path(run_dir)
    for k, info in enumerate(_queued(path.parent), start=1):
        if info.path == path:
            return k
    return None


def start_run(config: Any, runs_dir: str | os.PathLike | None = None, *, exclusive: bool = True,
              owner: str | None = None, limits: hosting.Limits | None = None,
              allowed_roots: list[str | os.PathLike] | None = None, queue: bool = False) -> Path:
    """Start `python -m brainscan train` for config (a dict or TrainConfig) in a new run folder.

    Returns the run folder at once; the training runs in its own process session, writing its
    output to <run>/log.txt. Raises RunBusyError if another run is in progress (unless exclusive=False).
    Hosted mode adds: owner (the session's id, recorded in status.json), limits (settings refused in one
    sentence each; wall time passed to training/run.py), allowed_roots (the data must lie inside one of them) and
    queue (when the slot is taken the run waits as 'queued'; advance_queue() starts it; one waiting or running
    run per owner and a bounded queue, as the limits say).
    """
    cfg = _config_dict(config)
    if limits is not None:
        problems = hosting.check_config(cfg, limits)
        if problems:
            raise RunError(" ".join(problems))
        if limits.wall_s:
            cfg["time_limit_s"] = int(limits.wall_s)
    if allowed_roots is not None:
        data = resolve_data_path(cfg["data"])
        if not any(data.is_relative_to(Path(r).resolve()) for r in allowed_roots):
            raise RunError("That dataset is not available here; choose one of the offered datasets or upload a zip.")
    root = get_runs_dir(runs_dir)
    with _locked(root):
        busy = active_run(root)
        if queue:
            waiting = _queued(root)
            if owner is not None and limits is not None and limits.queue_per_owner is not None:
                mine = [r for r in waiting + ([busy] if busy else []) if r.owner == owner]
                if len(mine) >= limits.queue_per_owner:
                    raise RunBusyError("You already have a run waiting or training; stop it or wait for it to end "
                                       "before starting another.")
            if busy is not None or waiting:
                if limits is not None and limits.queue_total is not None and len(waiting) >= limits.queue_total:
                    raise RunBusyError(f"The training queue is full ({len(waiting)} runs waiting); please try again "
                                       "later.")
                run_dir = _new_run_dir(root, cfg)
                write_json(run_dir / "config.json", cfg)
                write_json(run_dir / "status.json", {"state": QUEUED, "queued_at": time.time(), "owner": owner or "",
                                                     "updated": time.time()})
                return run_dir
        elif exclusive and busy is not None:
            raise RunBusyError(_busy_message(busy))
        run_dir = _new_run_dir(root, cfg)
        if owner is not None:
            write_json(run_dir / "status.json", {"owner": owner, "updated": time.time()})
        _launch(root, run_dir, cfg)
    return run_dir


def advance_queue(runs_dir: str | os.PathLike | None = None) -> RunInfo | None:
    """Keep the slot moving (called by the Train page every few seconds): stop the active run when it is past
    its time limit plus WALL_GRACE_S, and start the first waiting run when the slot is free. Returns the run
    started, if any."""
    root = get_runs_dir(runs_dir)
    busy = active_run(root)
    if busy is not None:
        limit = busy.config.get("time_limit_s")
        if limit and (busy.elapsed_s or 0) > float(limit) + WALL_GRACE_S:
            stop_run(busy.path, timeout=10)
            _update_status(busy.path, message=f"Stopped at the time limit of {int(limit) // 60} minutes.")
        return None
    with _locked(root):
        if active_run(root) is not None:
            return None
        waiting = _queued(root)
        if not waiting:
            return None
        nxt = waiting[0]
        cfg = read_json(nxt.path / "config.json")
        try:
            _launch(root, nxt.path, cfg)
        except RunError:
            return run_info(nxt.path)
        return run_info(nxt.path)


def keep_queue_moving(runs_dir: str | os.PathLike | None = None, every_s: float = 5.0,
                      stop: threading.Event | None = None) -> threading.Thread:
    """Call advance_queue every every_s seconds from a daemon thread of the app's server process, so that a
    waiting run starts (and one past its time limit stops) while no visitor has the Train page open. The runs
    folder is fixed when the thread starts (it may not exist yet); the thread ends when stop is set or when the
    folder, once there, is removed."""
    root = get_runs_dir(runs_dir)
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
                advance_queue(root)
            except Exception:  # noqa: BLE001 - a bad run folder must not end the keeper; the page shows it
                logging.getLogger("brainscan.runs").exception("advancing the training queue failed")

    thread = threading.Thread(target=loop, name=f"brainscan-training-queue:{root}", daemon=True)
    thread.start()
    return thread


# --- stopping ---------------------------------------------------------------------------------

def _wait_dead(pid: int, run_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, run_dir):
            return True
        time.sleep(0.1)
    return not pid_alive(pid, run_dir)


def _remove_partial_model(run_dir: Path) -> None:
    """A run without card.json has no model: drop model files a kill may have left half-moved."""
    if (run_dir / CARD_FILE).is_file():
        return
    for name in WEIGHT_FILES:
        with contextlib.suppress(FileNotFoundError):
            (run_dir / name).unlink()
    for pattern in (".model-new*", "..model-new.*"):  # the folder and save_model_folder's temporary sibling
        for tmp in run_dir.glob(pattern):
            shutil.rmtree(tmp, ignore_errors=True)


def stop_run(run_dir: str | os.PathLike, timeout: float = 30.0, owner: str | None = None) -> RunInfo:
    """Stop a run: SIGTERM to its process group (training/run.py stops after the current batch and saves no
    model), SIGKILL if it is still alive after timeout seconds. Returns the final RunInfo ('stopped',
    or 'finished' if it completed before the signal landed). A queued run leaves the queue. With owner, only
    that session's run (RunError otherwise)."""
    path = Path(run_dir)
    _check_owner(run_info(path), owner, "stopped")
    status = read_json(path / "status.json")
    if status.get("state") == QUEUED:
        with _locked(path.parent):
            if read_json(path / "status.json").get("state") == QUEUED:
                _update_status(path, state="stopped", ended=time.time(),
                               message="Taken out of the queue before it started.")
        return run_info(path)
    pid = status.get("pid")
    if status.get("state") == "running" and pid and pid_alive(pid, path):
        _signal_run(int(pid), signal.SIGTERM)
        if not _wait_dead(int(pid), path, timeout):
            _signal_run(int(pid), signal.SIGKILL)
            _wait_dead(int(pid), path, 10.0)
        proc = _PROCS.pop(str(path), None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        status = read_json(path / "status.json")
        if status.get("state") in ("running", "stopped") and not (path / CARD_FILE).is_file():
            _remove_partial_model(path)
            if status.get("state") == "running":  # killed before training/run.py could say so itself
                _update_status(path, state="stopped", ended=time.time(),
                               message="Stopped by the user; no model was saved.")
    _release_active(path)
    return run_info(path)


def _release_active(run_dir: Path) -> None:
    active = run_dir.parent / ACTIVE_FILE
    if read_json(active).get("run_dir") == str(run_dir):
        with contextlib.suppress(FileNotFoundError):
            active.unlink()


# --- promoting --------------------------------------------------------------------------------

def promote(run_dir: str | os.PathLike, models_dir: str | os.PathLike | None = None, name: str = "default",
            owner: str | None = None) -> Path:
    """Copy a finished run's model into models/<name> (complete folder or nothing; replaces an old one).

    Crash-safe (brainscan.modelfolder.replace_dir): the copy is written and fsynced beside models/<name>, then
    swapped in by one atomic exchange; leftovers of an earlier kill are recovered first. With owner, only that
    session's run."""
    info = run_info(run_dir)
    _check_owner(info, owner, "promoted")
    if not info.complete:
        raise RunError(f"Run {info.name} is {info.state}; only a finished run with a saved model can be promoted.")
    if name != slugify(name, "") or name in (".", ".."):
        raise RunError(f"{name!r} is not a usable model folder name (letters, digits, '.', '_' and '-').")
    root = get_models_dir(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    modelfolder.recover_all(root)
    tmp = modelfolder.temp_sibling(root / name, "new")
    tmp.mkdir()
    try:
        for fname in MODEL_FILES + EXTRA_FILES:
            src = info.path / fname
            if src.is_file():
                shutil.copy2(src, tmp / fname)
        missing = [f for f in MODEL_FILES if not (tmp / f).is_file()]
        if missing:
            raise RunError(f"Run {info.name} lacks {', '.join(missing)}; it cannot be promoted.")
        write_json(tmp / "promoted.json", {"run": info.name, "promoted": time.time()})
        os.chmod(tmp, 0o755)
        modelfolder.crash_point("written")
        dst = root / name
        modelfolder.replace_dir(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dst
