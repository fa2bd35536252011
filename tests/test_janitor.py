"""brainscan.janitor: leftovers of killed saves, age limit, total size cap; running runs are never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from brainscan import janitor


def run_folder(root: Path, name: str, state: str, ended: float | None = None, size: int = 1000,
               card: bool = True, data: str = "", pid: int | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    status = {"state": state, "started": (ended or time.time()) - 10}
    if ended:
        status["ended"] = ended
    if pid:
        status["pid"] = pid
    (d / "status.json").write_text(json.dumps(status))
    (d / "config.json").write_text(json.dumps({"data": data}))
    (d / "model.keras").write_bytes(b"x" * size)
    if card:
        (d / "card.json").write_text("{}")
    return d


def test_leftovers_of_a_killed_save_are_removed(tmp_path: Path) -> None:
    run = run_folder(tmp_path, "r1", "crashed", card=False)
    (run / "..model-new.tmp-123-456").mkdir()
    (run / "..model-new.tmp-123-456" / "model.keras").write_bytes(b"half")
    (run / ".model-new").mkdir()
    report = janitor.sweep(tmp_path)
    assert not (run / "..model-new.tmp-123-456").exists() and not (run / ".model-new").exists()
    assert not (run / "model.keras").exists(), "no card.json: the half-moved model goes"
    assert (run / "status.json").exists() and len(report.leftovers) == 3
    done = run_folder(tmp_path, "r2", "finished")
    janitor.sweep(tmp_path)
    assert (done / "model.keras").exists(), "a complete run keeps its model"


def test_age_and_total_size(tmp_path: Path) -> None:
    now = time.time()
    old = run_folder(tmp_path, "old", "finished", ended=now - 10_000)
    mid = run_folder(tmp_path, "mid", "stopped", ended=now - 100, size=600_000)
    new = run_folder(tmp_path, "new", "finished", ended=now - 10, size=600_000)
    up = tmp_path / "uploads" / "u1" / "20250101-000000-data"  # one upload of visitor u1: it ages on its own
    up.mkdir(parents=True)
    (up / "a.png").write_bytes(b"p" * 10)
    os.utime(up, (now - 20_000, now - 20_000))
    report = janitor.sweep(tmp_path, max_age_s=3600, now=now)
    assert not old.exists() and not up.exists() and mid.exists() and new.exists()
    assert not up.parent.exists(), "the visitor's emptied upload folder goes too"
    assert set(report.removed) == {str(old), str(up)}
    report = janitor.sweep(tmp_path, max_total_mb=1.0, now=now)
    assert not mid.exists() and new.exists(), "oldest first until under the cap"
    assert report.total_bytes <= 2**20


def test_running_and_queued_runs_and_their_data_are_kept(tmp_path: Path) -> None:
    now = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "brainscan"])
    up = tmp_path / "uploads" / "theirs"
    (up / "yes").mkdir(parents=True)
    os.utime(up, (now - 99_999, now - 99_999))
    running = run_folder(tmp_path, "running", "running", card=False, data=str(up / "yes"), pid=proc.pid)
    (running / "..model-new.tmp-1-2").mkdir()
    queued = run_folder(tmp_path, "queued", "queued", card=False)
    os.utime(queued, (now - 99_999, now - 99_999))
    try:
        janitor.sweep(tmp_path, max_age_s=1, max_total_mb=0, now=now)
    finally:
        proc.kill()
        proc.wait()
    assert running.exists() and (running / "..model-new.tmp-1-2").exists() and (running / "model.keras").exists()
    assert queued.exists() and up.exists()


def test_sweep_now_and_then_is_rate_limited(tmp_path: Path) -> None:
    assert janitor.sweep_now_and_then(tmp_path, None, None, every_s=3600) is not None
    assert janitor.sweep_now_and_then(tmp_path, None, None, every_s=3600) is None
