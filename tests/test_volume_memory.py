"""A 512 x 512 x 400 volume stays under 1 GB (issue 20): read, every slice checked, the peak slice in full, in a
fresh process with the shipped model (scripts/bench_volumes.py's case; measured there: 504 MB)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_512x512x400_volume_stays_under_1_gb(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_volumes", ROOT / "scripts" / "bench_volumes.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = tmp_path / "head_512_400.nii.gz"
    bench.write_nifti(path, 400, 512, 0.5, 0.5)
    r = bench.run_case(path, str(ROOT / "models" / "default"))
    assert r["shape"] == [400, 512, 512]
    assert r["peak_mb"] < 1024, r
    assert not r["tensorflow"]
