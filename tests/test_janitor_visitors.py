"""Hosted mode, round two (issue 23): the disk limit charges the visitor who fills it. Over the total, the janitor
takes the oldest files of the visitors over their share first and never another visitor's waiting or training run
or the upload it trains on; make_room() applies the share before an upload; `python -m brainscan janitor` uses the
hosted-mode limits by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brainscan import janitor

MB = 2**20
HEAVY, LIGHT, TRAINING = "e" * 32, "f" * 32, "d" * 32


def upload(root: Path, owner: str, name: str, mb: float, age_s: float) -> Path:
    item = root / "uploads" / owner[:16] / name
    (item / "yes").mkdir(parents=True)
    (item / "yes" / "a.png").write_bytes(b"p" * int(mb * MB))
    stamp = time.time() - age_s
    os.utime(item, (stamp, stamp))
    return item


def run(root: Path, name: str, owner: str, state: str, mb: float, age_s: float, data: str = "",
        pid: int | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    now = time.time()
    status = {"state": state, "owner": owner, "started": now - age_s - 10}
    if state not in ("running", "queued"):
        status["ended"] = now - age_s
    if pid:
        status["pid"] = pid
    (d / "status.json").write_text(json.dumps(status))
    (d / "config.json").write_text(json.dumps({"data": data}))
    (d / "model.keras").write_bytes(b"m" * int(mb * MB))
    return d


def test_over_the_total_only_the_visitor_over_its_share_loses_files(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "brainscan"])
    try:
        theirs = upload(tmp_path, LIGHT, "20250101-000000-theirs", 0.5, age_s=9000)  # older than everything
        their_run = run(tmp_path, "20250101-000000-their-run", LIGHT, "finished", 0.5, age_s=9000)
        live_data = upload(tmp_path, TRAINING, "20250101-000000-live", 0.5, age_s=9500)
        live = run(tmp_path, "20250101-000001-live-run", TRAINING, "running", 0.2, age_s=9500,
                   data=str(live_data / "yes"), pid=sleeper.pid)
        heavy = [upload(tmp_path, HEAVY, f"2025010{k}-000000-notes", 1.0, age_s=600 - k) for k in range(6)]
        report = janitor.sweep(tmp_path, max_total_mb=4.5, visitor_mb=2.0)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert theirs.exists() and their_run.exists(), "a visitor within its share keeps its older files"
    assert live.exists() and live_data.exists(), "a training run and its upload are never touched"
    gone = [h for h in heavy if not h.exists()]
    assert gone == heavy[: len(gone)] and 1 <= len(gone) <= 4, "the heavy visitor's oldest go first"
    assert report.total_bytes <= 4.5 * MB
    assert set(report.removed) == {str(h) for h in gone}


def test_with_everyone_within_their_share_the_oldest_go(tmp_path: Path) -> None:
    old = upload(tmp_path, LIGHT, "20250101-000000-old", 1.0, age_s=9000)
    new = upload(tmp_path, HEAVY, "20250101-000000-new", 1.0, age_s=10)
    janitor.sweep(tmp_path, max_total_mb=1.5, visitor_mb=2.0)
    assert not old.exists() and new.exists()


def test_make_room_takes_only_the_visitors_own_removable_files(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "brainscan"])
    try:
        other = upload(tmp_path, LIGHT, "20250101-000000-other", 3.0, age_s=9000)
        first = upload(tmp_path, HEAVY, "20250101-000000-first", 1.0, age_s=300)
        old_run = run(tmp_path, "20250101-000000-mine", HEAVY, "stopped", 0.5, age_s=200)
        live_data = upload(tmp_path, HEAVY, "20250101-000002-live", 1.0, age_s=100)
        live = run(tmp_path, "20250101-000003-live-run", HEAVY, "running", 0.1, age_s=100,
                   data=str(live_data / "yes"), pid=sleeper.pid)
        fits, used = janitor.make_room(tmp_path, HEAVY, int(0.5 * MB), visitor_mb=2.0)
        assert fits and not first.exists() and not old_run.exists()
        assert live.exists() and live_data.exists() and other.exists()
        assert used == pytest.approx(1.1 * MB, rel=0.01)
        fits, used = janitor.make_room(tmp_path, HEAVY, int(1.5 * MB), visitor_mb=2.0)
        assert not fits and live_data.exists(), "the upload a run trains on is never made room from"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert janitor.make_room(tmp_path, HEAVY, 10 * MB, visitor_mb=None) == (True, 0), "local mode: no share"


def test_the_janitor_command_uses_hosted_limits_by_default(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    aged_run = run(root, "20250101-000000-old", LIGHT, "finished", 0.1, age_s=7 * 3600)
    aged_upload = upload(root, LIGHT, "20250101-000000-old-data", 0.1, age_s=7 * 3600)
    fresh = run(root, "20250101-000001-new", LIGHT, "finished", 0.1, age_s=60)
    env = {k: v for k, v in os.environ.items() if k != "BRAINSCAN_HOSTED"}
    env.update(BRAINSCAN_RUNS_DIR=str(root), BRAINSCAN_MODELS_DIR=str(tmp_path / "models"),
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-m", "brainscan", "janitor"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert not aged_run.exists() and not aged_upload.exists() and fresh.exists(), report
    assert set(report["removed"]) == {str(aged_run), str(aged_upload)}
