"""The trainer's processes: the command that starts one, starting it in its own session, whether it still
lives, signalling its process group and ending it. No TensorFlow here.

The trainer is ``python -m brainscan train`` unless TRAINER says otherwise (tests set a small fake trainer
script there: it writes the run folder as training/run.py does, in seconds). TRAINER is read each time a run
starts, also by the queue.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from brainscan.config import REPO_ROOT, resolve_data_path
from brainscan.errors import RunError
from brainscan.modelfolder import CARD_FILE, read_json, write_json
from brainscan.runfolder import (
    ACTIVE_FILE,
    LOCK_FILE,
    LOG_FILE,
    read_status,
    remove_killed_save,
    train_argv,
    update_status,
)

TRAINER: Sequence[str] = (sys.executable, "-m", "brainscan", "train")
"""The argv prefix that starts a trainer; the run's settings follow it (brainscan.runfolder.train_argv)."""
DEFAULT_TRAINER = tuple(TRAINER)
KEEPER_LOCK = ".keeper.lock"  # in runs/: held by the keeper process for as long as it lives
KEEPER_LOG = ".keeper.log"  # in runs/: what the keeper process prints (its errors)

# Popen objects of the runs this process started: polling them reaps the child (a finished child
# that nobody waits for stays a zombie, and os.kill(pid, 0) still succeeds on a zombie).
_PROCS: dict[str, subprocess.Popen] = {}


def train_command(cfg: Mapping[str, Any], run_dir: Path, trainer: Sequence[str] | None = None) -> list[str]:
    """The trainer's command line for a config dict (TrainConfig field names; every field is passed on): the
    dataset path resolved, the output folder run_dir."""
    values = dict(cfg, out=str(run_dir))
    if values.get("data"):
        values["data"] = str(resolve_data_path(values["data"]))
    try:
        return [*(TRAINER if trainer is None else trainer), *train_argv(values)]
    except ValueError as err:
        raise RunError(str(err)) from err


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Serialise start/stop between Streamlit sessions and processes (an flock on runs/.lock)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def launch(root: Path, run_dir: Path, cfg: Mapping[str, Any]) -> None:
    """Start the trainer for run_dir in its own session, its output appended to log.txt; record its pid in
    status.json and runs/.active.json. Call with root locked."""
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
        update_status(run_dir, state="failed", ended=time.time(), message=f"Could not start training: {err}")
        raise RunError(f"Could not start the training process: {err}") from err
    _PROCS[str(run_dir)] = proc
    # The child writes the same status when it starts; whichever comes second merges into the first.
    if read_status(run_dir).get("state") == "running":
        update_status(run_dir, pid=proc.pid)
    else:
        update_status(run_dir, state="running", pid=proc.pid, started=time.time())
    write_json(root / ACTIVE_FILE, {"pid": proc.pid, "run_dir": str(run_dir), "started": time.time()})


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


def keeper_alive(root: Path) -> bool:
    """Whether a keeper process (runs.keeper) holds root's keeper lock."""
    try:
        fh = open(root / KEEPER_LOCK, "a+")  # noqa: SIM115 - closed below
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


_KEEPERS: dict[str, subprocess.Popen] = {}


def spawn_keeper(root: Path, idle_exit_s: float = 60.0) -> subprocess.Popen | None:
    """Start `python -m brainscan.runs.keeper` for root in its own session (so that it outlives this process, as
    the trainers do) unless one is alive; it ends by itself once nothing has waited or trained for idle_exit_s.
    The trainer command (TRAINER) goes with it when it is not the default."""
    key = str(root)
    mine = _KEEPERS.get(key)
    if mine is not None and mine.poll() is None:
        return None
    if not root.is_dir() or keeper_alive(root):
        return None
    cmd = [sys.executable, "-m", "brainscan.runs.keeper", "--runs-dir", str(root), "--idle-exit", str(idle_exit_s)]
    if tuple(TRAINER) != DEFAULT_TRAINER:
        cmd += ["--trainer", json.dumps(list(TRAINER))]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                            if p])
    try:
        with open(root / KEEPER_LOG, "ab") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    except OSError:
        return None
    _KEEPERS[key] = proc
    return proc


def killed_by(run_dir: Path) -> str | None:
    """The signal that ended run_dir's trainer, when this process started it and a signal ended it."""
    proc = _PROCS.get(str(run_dir))
    if proc is not None and proc.returncode is not None and proc.returncode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-proc.returncode).name
    return None


def reap() -> None:
    """Collect finished children so they do not linger as zombies."""
    for proc in [*_PROCS.values(), *_KEEPERS.values()]:
        proc.poll()


def signal_run(pid: int, sig: int) -> None:
    """Signal the run's process group (it is its own session leader) or, failing that, the process."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_dead(pid: int, run_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, run_dir):
            return True
        time.sleep(0.1)
    return not pid_alive(pid, run_dir)


def release_active(run_dir: Path) -> None:
    """Forget runs/.active.json when it names run_dir."""
    active = run_dir.parent / ACTIVE_FILE
    if read_json(active).get("run_dir") == str(run_dir):
        with contextlib.suppress(FileNotFoundError):
            active.unlink()


def terminate(run_dir: Path, timeout: float) -> None:
    """End a running run's trainer: SIGTERM to its process group (training/run.py stops after the current batch
    and saves no model), SIGKILL if it is still alive after timeout seconds. A run left without card.json loses
    what its save had written so far and is marked 'stopped' if the trainer could not say so itself. Then
    .active.json no longer names it."""
    status = read_status(run_dir)
    pid = status.get("pid")
    if status.get("state") == "running" and pid and pid_alive(pid, run_dir):
        signal_run(int(pid), signal.SIGTERM)
        if not wait_dead(int(pid), run_dir, timeout):
            signal_run(int(pid), signal.SIGKILL)
            wait_dead(int(pid), run_dir, 10.0)
        proc = _PROCS.pop(str(run_dir), None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        status = read_status(run_dir)
        if status.get("state") in ("running", "stopped") and not (run_dir / CARD_FILE).is_file():
            remove_killed_save(run_dir)
            if status.get("state") == "running":  # killed before training/run.py could say so itself
                update_status(run_dir, state="stopped", ended=time.time(),
                              message="Stopped by the user; no model was saved.")
    release_active(run_dir)
