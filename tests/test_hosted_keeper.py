"""Hosted mode, round two (issue 23): runs of a visitor who has gone end after a grace period, the server's thread
marks the visitors it still has connected, and the keeper process moves the queue on while the server is down
(after a restart, before anyone opens a page). Runs start tests/fake_brainscan_trainer.py (no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from brainscan import hosting, runs
from brainscan.runfolder import update_status
from brainscan.runs import process, visitors

FAKE = Path(__file__).resolve().with_name("fake_brainscan_trainer.py")
LIMITS = hosting.Limits(queue_per_owner=1, queue_total=8)
A, B, C = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
def root(tmp_path: Path, monkeypatch) -> Iterator[Path]:
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv(runs.MODELS_ENV, str(tmp_path / "models"))
    monkeypatch.setenv(hosting.HOSTED_ENV, "1")
    monkeypatch.setattr(process, "TRAINER", [sys.executable, str(FAKE), "--epoch-seconds=0.5", "train"])
    (tmp_path / "data").mkdir()
    yield tmp_path / "runs"
    keeper = process._KEEPERS.pop(str(tmp_path / "runs"), None)
    if keeper is not None and keeper.poll() is None:
        keeper.kill()
        keeper.wait(timeout=10)
    for info in runs.list_runs(tmp_path / "runs"):
        if info.state in ("running", "queued"):
            runs.stop_run(info.path, timeout=5)


def start(root: Path, owner: str, epochs: int = 200) -> Path:
    return runs.start_run({"data": str(root.parent / "data"), "epochs": epochs}, owner=owner, limits=LIMITS,
                          queue=True)


def wait(cond: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return cond()


def test_a_vanished_visitors_runs_end_after_the_grace(root: Path) -> None:
    a, b, c = start(root, A), start(root, B), start(root, C)
    assert [runs.run_info(p).state for p in (a, b, c)] == ["running", "queued", "queued"]
    for path in (a, c):  # they asked for their runs 100 s ago
        update_status(path, queued_at=time.time() - 100)
    now = time.time()
    visitors.seen(root, A, now - 100)  # A's browser closed 100 s ago
    visitors.seen(root, B, now)  # B has a tab open
    visitors.seen(root, C, now - 100)
    runs.advance_queue(root, vanished_after_s=300)
    assert [runs.run_info(p).state for p in (a, b, c)] == ["running", "queued", "queued"], "within the grace"
    started = runs.advance_queue(root, vanished_after_s=60)
    ia, ic = runs.run_info(a), runs.run_info(c)
    assert ia.state == "stopped" and "no tab of its visitor's browser was open for 1 minute" in ia.message
    assert ic.state == "stopped" and "no tab" in ic.message, "a waiting run of a vanished visitor leaves the queue"
    assert started is not None and started.path == b and runs.run_info(b).state == "running", "the slot moves on"


def test_a_run_whose_visitor_was_never_seen_counts_from_its_start(root: Path) -> None:
    a = start(root, A)
    runs.advance_queue(root, vanished_after_s=30)
    assert runs.run_info(a).state == "running", "just started: within the grace"
    assert runs.advance_queue(root, vanished_after_s=30) is None
    later = time.time() + 31
    assert visitors.end_vanished(root, 30, now=later) == [a.name]


def test_the_server_thread_marks_the_visitors_it_still_has_connected(root: Path, monkeypatch) -> None:
    import streamlit.runtime as st_runtime

    from brainscan.app import visitor

    class Runtime:
        connected = {"s1"}

        def is_active_session(self, sid: str) -> bool:
            return sid in self.connected

        def get_app_session(self, sid: str):
            return object() if sid in ("s1", "s2") else None

    monkeypatch.setattr(st_runtime, "exists", lambda: True)
    monkeypatch.setattr(st_runtime, "get_instance", lambda: Runtime())
    monkeypatch.setattr(visitor, "_SESSIONS", {"s1": (str(root), A), "s2": (str(root), B), "s3": (str(root), C)})
    old = time.time() - 1000
    for owner in (A, B, C):
        visitors.seen(root, owner, old)
    assert visitor.mark_connected(root) == 1
    assert visitors.last_seen(root, A) > old + 900, "a connected tab keeps its visitor here"
    assert visitors.last_seen(root, B) == pytest.approx(old), "disconnected (it may come back): not seen"
    assert "s3" not in visitor._SESSIONS and "s2" in visitor._SESSIONS, "closed sessions are forgotten"


def test_a_waiting_run_starts_after_a_restart_without_a_page_view(root: Path) -> None:
    a, b = start(root, A), start(root, B)
    stop = threading.Event()
    server = runs.keep_queue_moving(root, every_s=0.1, stop=stop, keeper=True)  # what the app's server runs
    assert wait(lambda: process.keeper_alive(root)), "a run waits: the server started the keeper process"
    stop.set()  # the server goes away; nobody opens a page
    server.join(timeout=5)
    keeper = process._KEEPERS[str(root)]
    runs.stop_run(a, timeout=10)  # the slot frees
    t0 = time.monotonic()
    assert wait(lambda: runs.run_info(b).state == "running", timeout=20), runs.run_info(b)
    assert time.monotonic() - t0 < 10
    assert keeper.poll() is None and runs.run_info(b).status.get("pid") != keeper.pid


def test_one_keeper_per_folder_and_it_ends_when_idle(root: Path) -> None:
    root.mkdir(parents=True)
    cmd = [sys.executable, "-m", "brainscan.runs.keeper", "--runs-dir", str(root), "--idle-exit", "1",
           "--every", "0.2"]
    first = subprocess.Popen(cmd, cwd=runs.REPO_ROOT)
    try:
        assert wait(lambda: process.keeper_alive(root), timeout=30)
        second = subprocess.run(cmd, cwd=runs.REPO_ROOT, timeout=60)
        assert second.returncode == 0 and first.poll() is None, "the second keeper leaves at once"
        assert process.spawn_keeper(root) is None, "no keeper is spawned beside a live one"
        assert first.wait(timeout=30) == 0, "nothing waits or trains: it ends by itself"
    finally:
        if first.poll() is None:
            first.kill()
