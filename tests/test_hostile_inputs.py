"""Hostile inputs from the issue, on the command line and in the dataset summary (subprocesses with timeouts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def predict(*paths: str | Path, timeout: int = 120) -> tuple[int, list[dict], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("BRAINSCAN_MODEL", None)
    proc = subprocess.run([sys.executable, "-m", "brainscan", "predict", *map(str, paths)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=timeout)  # a hang fails the test here
    return proc.returncode, [json.loads(ln) for ln in proc.stdout.splitlines() if ln.strip()], proc.stderr


def test_cli_fifo_device_and_huge_file_are_refused_quickly(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as fh:
        fh.truncate(2 * 1024**3)  # sparse: reading it whole would take 2 GB of memory
    code, lines, err = predict(fifo, "/dev/zero", huge)
    assert code == 1 and "Traceback" not in err, err[-2000:]
    assert [ln["file"] for ln in lines] == [str(fifo), "/dev/zero", str(huge)]
    assert "not a regular file" in lines[0]["error"]
    assert "not a regular file" in lines[1]["error"]
    assert "larger than 512 MB" in lines[2]["error"]


def test_summary_lists_unreadable_files_instead_of_failing(tmp_path: Path) -> None:
    from brainscan.scans import summary

    for cls in ("yes", "no"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((64, 64), 40 * i + (cls == "yes") * 20, np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "yes" / "README").write_text("an extension-less file that is not an image")
    (tmp_path / "no" / "id_rsa").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    Image.new("L", (13000, 13000)).save(tmp_path / "no" / "huge.png")
    s = summary.dataset_summary(tmp_path)
    assert s["n_images"] == 6
    assert sorted(u["file"] for u in s["unreadable"]) == ["no/huge.png", "no/id_rsa", "yes/README"]
    assert all(str(tmp_path) not in u["file"] + u["reason"] for u in s["unreadable"])
