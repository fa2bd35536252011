"""Kill the writer at every step of a promote (and of a folder replace) and check what survives.

Each case runs the promote in a subprocess that exits at once (os._exit, no clean-up) at one named step
(BRAINSCAN_CRASH_AT), through the atomic exchange and through the rename-aside fallback. Afterwards
brainscan.modelfolder.recover must leave models/default as the complete old model or the complete new one,
with no hidden leftovers, and a later promote must work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brainscan import janitor, runs
from brainscan import modelfolder as atomic

ROOT = Path(__file__).resolve().parent.parent
STEPS = {"exchange": ["written", "synced", "exchanged", None],
         "fallback": ["written", "synced", "moved-aside", "renamed", None]}


def finished_run(root: Path, tag: str) -> Path:
    run = root / f"run-{tag}"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished", "started": time.time(), "ended": time.time()}))
    (run / "model.keras").write_bytes(tag.encode() * 1000)
    (run / "card.json").write_text(json.dumps({"name": tag}))
    return run


def promote_in_subprocess(run: Path, models: Path, step: str | None, fallback: bool) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(atomic.CRASH_ENV, None)
    if step:
        env[atomic.CRASH_ENV] = step
    if fallback:
        env[atomic.NO_EXCHANGE_ENV] = "1"
    code = f"from brainscan import runs; runs.promote({str(run)!r}, {str(models)!r})"
    return subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode


def model_of(models: Path) -> str:
    folder = models / "default"
    assert (folder / "card.json").is_file() and (folder / "model.keras").is_file(), sorted(os.listdir(models))
    name = json.loads((folder / "card.json").read_text())["name"]
    assert (folder / "model.keras").read_bytes() == name.encode() * 1000, "card and weights from one model"
    return name


@pytest.mark.parametrize("path", list(STEPS))
def test_a_kill_at_any_step_of_a_promote_leaves_old_or_new(tmp_path: Path, path: str) -> None:
    for step in STEPS[path]:
        case = tmp_path / f"{path}-{step}"
        models = case / "models"
        old, new = finished_run(case / "runs", "old"), finished_run(case / "runs", "new")
        assert promote_in_subprocess(old, models, None, path == "fallback") == 0
        code = promote_in_subprocess(new, models, step, path == "fallback")
        assert code == (97 if step else 0), (step, code)
        atomic.recover_all(models)
        got = model_of(models)
        assert got == ("old" if step in ("written", "synced") or (step == "moved-aside") else "new"), (step, got)
        assert sorted(os.listdir(models)) == ["default"], (step, os.listdir(models))
        if step:  # the next promote works after the crash
            assert promote_in_subprocess(new, models, None, path == "fallback") == 0
            assert model_of(models) == "new"


def test_there_is_always_a_model_folder_during_the_exchange(tmp_path: Path) -> None:
    """The moment between the fallback's two renames has no models/default; the exchange has none."""
    models = tmp_path / "models"
    old, new = finished_run(tmp_path / "runs", "old"), finished_run(tmp_path / "runs", "new")
    assert promote_in_subprocess(old, models, None, False) == 0
    assert promote_in_subprocess(new, models, "exchanged", False) == 97
    assert model_of(models) == "new", "readers see the new model before any clean-up ran"


def test_a_run_killed_while_saving_leaves_nothing_that_survives_the_janitor(tmp_path: Path) -> None:
    """train.py saves into runs/<run>/.model-new through save_model_folder's '..model-new.tmp-*' sibling;
    the issue found those (up to 8 MB) never removed."""
    run = tmp_path / "runs" / "r"
    (run / "..model-new.tmp-1-2").mkdir(parents=True)
    (run / "..model-new.tmp-1-2" / "model.keras").write_bytes(b"x" * 8_000_000)
    (run / ".model-new").mkdir()
    (run / "model.keras").write_bytes(b"moved before the kill")
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": 2**22 + 12345}))
    runs.run_info(run)  # the process is gone: the run becomes 'crashed'
    janitor.sweep(tmp_path / "runs")
    assert sorted(os.listdir(run)) == ["status.json"]
