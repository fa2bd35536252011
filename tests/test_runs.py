"""brainscan.runs: starting, watching, stopping and promoting training runs.

The lifecycle tests run a fake trainer (tests/fake_brainscan_trainer.py: real subprocesses that write the run
folder as training/run.py does, in a fraction of a second per epoch, no TensorFlow); one slow test runs the real
`python -m brainscan train` end to end and promotes its model."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from brainscan import runs
from brainscan.scans import summary
from brainscan.scans.datasets import DatasetError

TINY = {"img_size": 32, "batch_size": 8, "max_images": 0}  # settings of a real training run that takes seconds


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> str:
    from brainscan.scans.synthetic import write_dataset

    return str(write_dataset(tmp_path_factory.mktemp("phantoms"), per_class=8, size=32))


FAKE_TRAINER = Path(__file__).resolve().with_name("fake_brainscan_trainer.py")


def use_fake_trainer(monkeypatch, epoch_seconds: float = 0.2, **options) -> None:
    """Runs started from now on run the fake trainer (options: crash_at_epoch=N, fail="message")."""
    argv = [sys.executable, str(FAKE_TRAINER), f"--epoch-seconds={epoch_seconds}"]
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    monkeypatch.setattr(runs.process, "TRAINER", [*argv, "train"])


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch) -> Iterator[Path]:
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv(runs.MODELS_ENV, str(tmp_path / "models"))
    use_fake_trainer(monkeypatch)
    yield tmp_path / "runs"
    for info in runs.list_runs(tmp_path / "runs"):  # a failed test must not leave training running or queued
        if info.state in ("running", "queued"):
            runs.stop_run(info.path, timeout=5)


@pytest.fixture
def data(tmp_path: Path) -> str:
    """A dataset path for the fake trainer (it reads nothing from it)."""
    (tmp_path / "data").mkdir()
    return str(tmp_path / "data")


@pytest.fixture
def finished_run(runs_dir: Path, data: str) -> Path:
    run_dir = runs.start_run({"data": data, "epochs": 2, "name": "done"})
    info = wait_for(run_dir, lambda i: not i.running)
    assert info.state == "finished", info.log_tail
    return run_dir


def wait_for(run_dir: Path, cond: Callable[[runs.RunInfo], bool], timeout: float = 30) -> runs.RunInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = runs.run_info(run_dir)
        if cond(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


def fake_process(*, ignore_term: bool = False, tag: str = "brainscan") -> subprocess.Popen:
    """A sleeping process whose command line mentions brainscan (what pid_alive looks for)."""
    code = "import signal, time\n" + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
    code += "time.sleep(120)"
    return subprocess.Popen([sys.executable, "-c", code, tag], start_new_session=True)


def fake_run(root: Path, name: str, pid: int | None, state: str = "running") -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({"state": state, "pid": pid, "started": time.time()}))
    (run_dir / "config.json").write_text(json.dumps({"data": "x", "epochs": 3}))
    (run_dir / "log.txt").write_text("[10:00:00] epoch 1/3 loss=0.7\nsomething went wrong here\n")
    return run_dir


# --- fast: no training --------------------------------------------------------------------------

def test_runs_dir_from_env(runs_dir: Path) -> None:
    assert runs.get_runs_dir() == runs_dir
    assert runs.get_runs_dir("/elsewhere") == Path("/elsewhere")
    assert runs.list_runs() == [] and runs.active_run() is None


def test_train_command_and_names(tmp_path: Path) -> None:
    cmd = runs.train_command({"data": str(tmp_path), "arch": "compact", "epochs": 2, "img_size": 32,
                              "learning_rate": 0.001, "augment": False, "max_images": 0, "name": ""}, tmp_path / "r")
    assert cmd[:4] == [sys.executable, "-m", "brainscan", "train"]
    assert cmd[cmd.index("--data") + 1] == str(tmp_path)
    assert cmd[cmd.index("--epochs") + 1] == "2" and cmd[cmd.index("--lr") + 1] == "0.001"
    assert "--no-augment" in cmd and "--name" not in cmd
    from brainscan.config import TrainConfig

    cmd = runs.train_command(runs.config_dict(TrainConfig(data=str(tmp_path), out="ignored", epochs=4)), tmp_path)
    assert cmd[cmd.index("--epochs") + 1] == "4" and cmd[cmd.index("--out") + 1] == str(tmp_path)
    assert runs.slugify("My run: v2 / test!") == "My-run-v2-test"
    assert runs.resolve_data_path("../x") == (runs.REPO_ROOT / "../x").resolve()
    with pytest.raises(runs.RunError, match="architecture"):
        runs.start_run({"data": str(tmp_path), "arch": "resnet"}, runs_dir=tmp_path / "runs")
    with pytest.raises(runs.RunError, match="dataset"):
        runs.start_run({"data": ""}, runs_dir=tmp_path / "runs")


def test_busy_with_a_run_started_elsewhere_then_crashed(runs_dir: Path, data: str) -> None:
    """A running run without .active.json (e.g. started from a shell) blocks; when it dies it is 'crashed'."""
    proc = fake_process()
    try:
        run_dir = fake_run(runs_dir, "20250101-000000-shell", proc.pid)
        assert runs.active_run().name == run_dir.name
        with pytest.raises(runs.RunBusyError, match="20250101-000000-shell is still training"):
            runs.start_run({"data": data})
    finally:
        proc.kill()
        proc.wait()
    info = runs.run_info(run_dir)
    assert info.state == "crashed"
    assert "something went wrong here" in info.message
    assert json.loads((run_dir / "status.json").read_text())["state"] == "crashed"  # written back
    assert runs.active_run() is None


def test_reused_pid_is_not_a_live_run(runs_dir: Path) -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        run_dir = fake_run(runs_dir, "r", proc.pid)
        assert runs.run_info(run_dir).state == "crashed"  # pid alive, but not a brainscan process
    finally:
        proc.kill()
        proc.wait()


def test_stop_escalates_to_sigkill_and_cleans_partial_model(runs_dir: Path) -> None:
    proc = fake_process(ignore_term=True)
    try:
        run_dir = fake_run(runs_dir, "stubborn", proc.pid)
        (run_dir / "model.keras").write_bytes(b"half")
        (run_dir / ".model-new").mkdir()
        time.sleep(0.3)  # let the child install its SIG_IGN
        t0 = time.monotonic()
        info = runs.stop_run(run_dir, timeout=0.5)
        assert time.monotonic() - t0 < 8
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert info.state == "stopped" and "no model" in info.message
    assert not (run_dir / "model.keras").exists() and not (run_dir / ".model-new").exists()
    assert not (run_dir / "card.json").exists()


def test_list_runs_newest_first_skips_uploads(runs_dir: Path) -> None:
    fake_run(runs_dir, "a", None, state="failed")
    time.sleep(0.01)
    fake_run(runs_dir, "b", None, state="stopped")
    (runs_dir / "uploads" / "x").mkdir(parents=True)
    assert [r.name for r in runs.list_runs()] == ["b", "a"]
    assert runs.list_runs()[0].label == "b (stopped)"


def test_promote_refuses_unfinished(runs_dir: Path, tmp_path: Path) -> None:
    run_dir = fake_run(runs_dir, "halfway", None, state="stopped")
    with pytest.raises(runs.RunError, match="only a finished run"):
        runs.promote(run_dir)
    assert not (tmp_path / "models" / "default").exists()


def test_dataset_summary(phantoms: str, tmp_path: Path) -> None:
    s = summary.dataset_summary(phantoms)
    assert s["counts"] == {"notumor": 8, "tumor": 8} and s["n_images"] == 16
    assert s["split"]["train"] + s["split"]["val"] + s["split"]["test_dedup"] == 16
    assert sum(s["split_per_class"]["val"].values()) == s["split"]["val"]
    assert s["image_sizes"]["width"] == {"min": 32, "median": 32, "max": 32}
    assert s["near_duplicates"]["max_hamming_bits"] > 0
    (tmp_path / "empty" / "stuff").mkdir(parents=True)
    with pytest.raises(DatasetError, match="No class folders"):
        summary.dataset_summary(tmp_path / "empty")


def test_find_datasets(tmp_path: Path) -> None:
    from brainscan.scans.synthetic import write_dataset

    dataset = write_dataset(tmp_path / "shared" / "tiny", per_class=2, size=32)
    (tmp_path / "shared" / "not_a_dataset" / "misc").mkdir(parents=True)
    assert summary.find_datasets([tmp_path / "shared"]) == [dataset]
    assert summary.find_datasets([tmp_path / "missing"]) == []


# --- the run lifecycle, with the fake trainer ------------------------------------------------------

def test_start_progress_finish_and_busy(runs_dir: Path, data: str) -> None:
    run_dir = runs.start_run({"data": data, "epochs": 3, "name": "three epochs", "lesions": 0.5, "vflip": 0.25})
    assert run_dir.parent == runs_dir and run_dir.name.endswith("-three-epochs")
    assert (run_dir / "status.json").is_file() and (run_dir / "log.txt").is_file()
    assert runs.active_run().path == run_dir
    with pytest.raises(runs.RunBusyError, match="still training"):
        runs.start_run({"data": data, "epochs": 1})
    seen = wait_for(run_dir, lambda i: i.progress is not None or not i.running)
    assert seen.progress is not None and seen.progress.epochs == 3
    info = wait_for(run_dir, lambda i: not i.running)
    assert info.state == "finished", info.log_tail
    assert info.complete and info.card["classes"] == ["notumor", "tumor"]
    assert info.metrics["val"]["n"] == 4 and len(info.history["loss"]) == 3
    assert info.progress.epoch == 3 and any("Finished" in ln for ln in info.log_tail)
    assert info.config["lesions"] == 0.5 and info.config["vflip"] == 0.25, "every setting reaches the trainer"
    assert info.log_tail[0].startswith("$ python ") and "--lesions 0.5" in info.log_tail[0]
    assert runs.active_run() is None
    assert [r.name for r in runs.list_runs()] == [run_dir.name]


def test_stop_during_training(runs_dir: Path, data: str) -> None:
    run_dir = runs.start_run({"data": data, "epochs": 200})
    info = wait_for(run_dir, lambda i: (i.progress is not None and i.progress.epoch >= 1) or not i.running)
    assert info.running, info.log_tail
    pid = info.status["pid"]
    t0 = time.monotonic()
    info = runs.stop_run(run_dir, timeout=10)
    assert time.monotonic() - t0 < 5, "SIGTERM is honoured; no wait for SIGKILL"
    assert info.state == "stopped" and "no model" in info.message, info.log_tail
    assert not runs.pid_alive(pid)
    for name in ("card.json", "model.keras", "ood.npz", ".model-new"):
        assert not (run_dir / name).exists(), name
    assert runs.active_run() is None
    assert not (runs_dir / runs.ACTIVE_FILE).exists()
    with pytest.raises(runs.RunError, match="only a finished run"):
        runs.promote(run_dir)


def test_a_crashed_trainer_is_crashed_with_its_last_log_line(runs_dir: Path, data: str, monkeypatch) -> None:
    use_fake_trainer(monkeypatch, crash_at_epoch=1)
    run_dir = runs.start_run({"data": data, "epochs": 200})
    info = wait_for(run_dir, lambda i: not i.running)
    assert info.state == "crashed"
    assert "SIGKILL" in info.message and "last log line: " in info.message
    assert info.message.endswith("epoch 1/200 loss=1.0000"), info.message
    assert json.loads((run_dir / "status.json").read_text())["state"] == "crashed"  # written back
    assert not (run_dir / "card.json").exists()
    assert runs.active_run() is None  # the next run may start
    runs.start_run({"data": data, "epochs": 1})


def test_failed_run_reports_the_reason(runs_dir: Path, data: str, monkeypatch) -> None:
    use_fake_trainer(monkeypatch, fail="DatasetError: No class folders found in the folder")
    run_dir = runs.start_run({"data": data, "epochs": 1})
    info = wait_for(run_dir, lambda i: not i.running)
    assert info.state == "failed", "a trainer that said why it ended is not 'crashed'"
    assert "No class folders found" in info.message


def test_a_second_run_waits_in_the_queue_and_starts_when_the_slot_is_free(runs_dir: Path, data: str) -> None:
    first = runs.start_run({"data": data, "epochs": 200, "name": "first"}, queue=True)
    assert runs.run_info(first).running and runs.queue_position(first) is None
    second = runs.start_run({"data": data, "epochs": 1, "name": "second"}, queue=True)
    assert runs.run_info(second).state == "queued" and runs.queue_position(second) == 1
    assert runs.run_info(second).config["epochs"] == 1
    assert runs.advance_queue() is None, "the slot is taken"
    assert runs.run_info(second).state == "queued"
    runs.stop_run(first, timeout=10)
    started = runs.advance_queue()
    assert started is not None and started.path == second and started.state == "running"
    assert runs.queue_position(second) is None and runs.active_run().path == second
    assert wait_for(second, lambda i: not i.running).state == "finished"


def test_a_queued_run_can_leave_the_queue(runs_dir: Path, data: str) -> None:
    first = runs.start_run({"data": data, "epochs": 200}, queue=True)
    second = runs.start_run({"data": data, "epochs": 1}, queue=True)
    info = runs.stop_run(second)
    assert info.state == "stopped" and "out of the queue" in info.message
    assert runs.run_info(first).running
    runs.stop_run(first, timeout=10)
    assert runs.advance_queue() is None


def test_the_queue_stops_a_run_past_its_time_limit(runs_dir: Path, data: str, monkeypatch) -> None:
    run_dir = runs.start_run({"data": data, "epochs": 200, "time_limit_s": 0.3})
    wait_for(run_dir, lambda i: (i.elapsed_s or 0) > 0.6)
    assert runs.advance_queue() is None and runs.run_info(run_dir).running, f"within {runs.WALL_GRACE_S} s of grace"
    assert runs.advance_queue(grace_s=0) is None
    info = runs.run_info(run_dir)
    assert info.state == "stopped" and info.message == "Stopped at the time limit of 0 minutes.", info.message
    assert runs.active_run() is None and not (run_dir / "card.json").exists()

    late = runs.start_run({"data": data, "epochs": 200, "time_limit_s": 0.3})  # the module setting, as the keeper
    wait_for(late, lambda i: (i.elapsed_s or 0) > 0.6)
    monkeypatch.setattr(runs.queue, "WALL_GRACE_S", 0.0)
    runs.advance_queue()
    assert runs.run_info(late).state == "stopped"


def test_queue_limits_per_owner_and_in_total(runs_dir: Path, data: str) -> None:
    from brainscan import hosting

    limits = hosting.Limits(queue_per_owner=1, queue_total=1)
    a = runs.start_run({"data": data, "epochs": 200}, owner="a", limits=limits, queue=True)
    assert runs.run_info(a).running and runs.run_info(a).owner == "a"
    with pytest.raises(runs.RunBusyError, match="You already have a run waiting or training"):
        runs.start_run({"data": data, "epochs": 1}, owner="a", limits=limits, queue=True)
    b = runs.start_run({"data": data, "epochs": 1}, owner="b", limits=limits, queue=True)
    assert runs.run_info(b).state == "queued"
    with pytest.raises(runs.RunBusyError, match=r"The training queue is full \(1 runs waiting\); please try again"):
        runs.start_run({"data": data, "epochs": 1}, owner="c", limits=limits, queue=True)
    assert len(runs.list_runs()) == 2, "a refused run leaves no folder"
    with pytest.raises(runs.RunError, match="another session"):
        runs.stop_run(a, owner="b")


def test_the_queue_keeper_starts_a_waiting_run_with_no_page_open(runs_dir: Path, data: str) -> None:
    import threading

    blocker = fake_process()
    try:
        fake_run(runs_dir, "20250101-000000-busy", blocker.pid)  # another visitor's run holds the slot
        waiting = runs.start_run({"data": data, "epochs": 1}, queue=True)
        assert runs.run_info(waiting).state == "queued"
        stop = threading.Event()
        keeper = runs.keep_queue_moving(runs_dir, every_s=0.1, stop=stop)
        time.sleep(0.5)
        assert runs.run_info(waiting).state == "queued", "the slot is still taken"
        blocker.kill()
        blocker.wait()
        info = wait_for(waiting, lambda i: i.state != "queued")
        assert info.state in ("running", "finished"), info.status
        stop.set()
        keeper.join(timeout=5)
        assert not keeper.is_alive()
    finally:
        if blocker.poll() is None:
            blocker.kill()
    assert wait_for(waiting, lambda i: not i.running).state == "finished"


def test_the_queue_keeper_survives_a_broken_folder_and_ends_with_it(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "runs"  # not there yet: a new server before its first run
    calls = []

    def broken(where):
        calls.append(where)
        raise OSError("a half-written status file")

    monkeypatch.setattr(runs.queue, "advance_queue", broken)
    keeper = runs.keep_queue_moving(root, every_s=0.02)
    time.sleep(0.2)
    assert keeper.is_alive() and not calls
    root.mkdir()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(calls) >= 3 and calls[0] == root and keeper.is_alive()
    shutil.rmtree(root)
    keeper.join(timeout=5)
    assert not keeper.is_alive()


def test_promote_copies_and_replaces_atomically(finished_run: Path, tmp_path: Path, monkeypatch) -> None:
    models = tmp_path / "models"
    dst = runs.promote(finished_run, models_dir=models)
    assert dst == models / "default"
    for name in ("model.keras", "card.json", "ood.npz", "metrics.json", "history.json", "split.json"):
        assert (dst / name).is_file(), name
    assert json.loads((dst / "promoted.json").read_text())["run"] == finished_run.name  # no server path

    (dst / "stale.txt").write_text("from the old model")
    runs.promote(finished_run, models_dir=models)
    assert not (dst / "stale.txt").exists() and (dst / "card.json").is_file()
    assert sorted(p.name for p in models.iterdir()) == ["default"]  # no temporary or old folders left

    # A failure half-way leaves the previous model untouched.
    (dst / "marker.txt").write_text("previous")
    real_copy = runs.promotion.shutil.copy2

    def flaky(src, target, *a, **k):
        if Path(src).name == "ood.npz":
            raise OSError("disk full")
        return real_copy(src, target, *a, **k)

    monkeypatch.setattr(runs.promotion.shutil, "copy2", flaky)
    with pytest.raises(OSError, match="disk full"):
        runs.promote(finished_run, models_dir=models)
    assert (dst / "marker.txt").read_text() == "previous"
    assert sorted(p.name for p in models.iterdir()) == ["default"]

    with pytest.raises(runs.RunError, match="folder name"):
        runs.promote(finished_run, models_dir=models, name="../evil")


# --- slow: the real trainer ---------------------------------------------------------------------

@pytest.mark.slow
def test_the_real_trainer_end_to_end_and_its_model_promoted(runs_dir: Path, phantoms: str, monkeypatch) -> None:
    """`python -m brainscan train` on a tiny phantom set: progress, a complete run folder, promotion, loading."""
    monkeypatch.setattr(runs.process, "TRAINER", [sys.executable, "-m", "brainscan", "train"])
    run_dir = runs.start_run({"data": phantoms, "epochs": 2, "name": "real", **TINY})
    seen = wait_for(run_dir, lambda i: i.progress is not None or not i.running, timeout=240)
    assert seen.progress is not None and seen.progress.epochs == 2, seen.log_tail
    info = wait_for(run_dir, lambda i: not i.running, timeout=240)
    assert info.state == "finished", info.log_tail
    assert info.complete and info.card["classes"] == ["notumor", "tumor"]
    assert info.metrics["val"]["n"] >= 2 and len(info.history["loss"]) == 2
    assert info.progress.epoch == 2 and any("Finished" in ln for ln in info.log_tail)
    assert runs.active_run() is None

    from brainscan.runtime.inference import load_model

    dst = runs.promote(run_dir, name="demo")
    for name in ("model.keras", "model.tflite", "head.npz", "card.json", "ood.npz", "metrics.json", "history.json",
                 "split.json"):
        assert (dst / name).is_file(), name
    model = load_model(dst)  # as the app loads it: LiteRT, no TensorFlow in this process
    assert model.classes == ["notumor", "tumor"] and model.size == 32
