"""Memory ceilings, measured in a fresh process per case by scripts/bench_memory.py (peak VmHWM).

The issue's figures before the bounded reader: a 6300x6300 RGBA PNG took the scan path to 1,163 MB and
eight 13000x13000 PNGs took the dataset summary to 2,048 MB (same script, same machine). No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CEILING_MB = 500


def bench(*cases: str) -> dict[str, dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_memory.py"), "--cases", ",".join(cases)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {c["case"]: c for c in json.loads(proc.stdout)["cases"]}


@pytest.mark.slow
def test_scan_path_peak_stays_under_the_ceiling() -> None:
    got = bench("rgba_6300", "i16_6000", "over_limit_13000")
    for name in ("rgba_6300", "i16_6000"):
        assert got[name]["result"].startswith("answered"), got[name]
        assert got[name]["peak_mb"] < CEILING_MB, got[name]
    assert got["over_limit_13000"]["result"].startswith("refused"), got["over_limit_13000"]
    assert got["over_limit_13000"]["peak_over_baseline_mb"] < 100, got["over_limit_13000"]


@pytest.mark.slow
def test_dataset_summary_peak_stays_under_the_ceiling() -> None:
    got = bench("summary_8x13000", "summary_8x_rgba_6300")
    assert got["summary_8x13000"]["result"] == "summary: 8 images, 8 unreadable", got["summary_8x13000"]
    assert got["summary_8x13000"]["peak_mb"] < CEILING_MB, got["summary_8x13000"]
    assert got["summary_8x_rgba_6300"]["result"] == "summary: 16 images, 0 unreadable", got["summary_8x_rgba_6300"]
    assert got["summary_8x_rgba_6300"]["peak_mb"] < CEILING_MB, got["summary_8x_rgba_6300"]
