"""train --distribute: mirrored training over two replicas (the CPU split into two logical devices, as several
GPUs would be) writes a complete model folder that loads and answers; multi-worker is refused in one sentence
(Keras 3's Model.fit does not run under MultiWorkerMirroredStrategy: keras-team/keras#20585)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from brainscan.modelfolder import MODEL_FILES

ROOT = Path(__file__).resolve().parent.parent


def train(data: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brainscan", "train", "--data", data, "--out", str(out),
                           "--epochs", "2", "--img-size", "32", "--batch-size", "8", *extra],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> str:
    from brainscan.scans.synthetic import write_dataset

    return str(write_dataset(tmp_path_factory.mktemp("dist") / "d", per_class=16, size=32))


@pytest.mark.slow
def test_mirrored_over_two_replicas_writes_a_model_that_answers(phantoms, tmp_path):
    out = tmp_path / "run"
    proc = train(phantoms, out, "--distribute", "mirrored", "--cpu-replicas", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (out / "log.txt").read_text() if (out / "log.txt").is_file() else proc.stdout
    assert "Distributed: 2 replicas" in log
    assert all((out / f).is_file() for f in MODEL_FILES)
    assert json.loads((out / "config.json").read_text())["distribute"] == "mirrored"
    answer = subprocess.run([sys.executable, "-m", "brainscan", "predict", str(next(Path(phantoms).rglob("*.png"))),
                             "--model", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert answer.returncode == 0 and json.loads(answer.stdout)["label"] in ("notumor", "tumor")


def test_multi_worker_is_refused_in_one_sentence(phantoms, tmp_path):
    proc = train(phantoms, tmp_path / "run", "--distribute", "multi-worker")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "keras-team/keras#20585" in proc.stderr and "--distribute mirrored" in proc.stderr


def test_a_batch_that_does_not_split_over_the_replicas_is_refused(phantoms, tmp_path):
    proc = train(phantoms, tmp_path / "run", "--distribute", "mirrored", "--cpu-replicas", "3")
    assert proc.returncode == 2 and "does not split evenly over 3 replicas" in proc.stderr
