"""The PDF report's pages, rendered, look as they did: each page of the typical and the extreme report
(tests/report_pdf.py, fixed inputs, no trained model) is rendered by pdftoppm in gray at 50 dpi and compared with
the PNG stored under tests/snapshots/ (mean absolute difference per pixel, 0-255).

After a deliberate change of the report (layout, wording, figures), look at the new pages and store them:

    BRAINSCAN_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_report_snapshots.py

The comparison is tests/snapshot.py's, with this test's own measured tolerance; a failing one leaves the page it
rendered and the difference image in artifacts/snapshots/.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from report_pdf import report_inputs
from snapshot import UPDATE, assert_snapshot

from brainscan.app import report

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
DPI = 50
# Measured on the typical page: other probabilities (digits, bar lengths) 0.06, another heatmap caption 0.20, one
# more line at the end 0.10; one line more in the middle (every section below moves down) 5.7; the layout before
# the report was measured (sections at fixed heights, running into each other) 62.8. So a few changed words pass,
# anything that moves a section fails; that no two lines overlap is tested line by line in tests/test_report.py.
TOLERANCE = 0.5

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed")


def render(pdf: bytes, folder: Path, stem: str) -> list[bytes]:
    """Each page of pdf as a gray PNG at DPI."""
    src = folder / f"{stem}.pdf"
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", str(src), str(folder / stem)], check=True,
                   timeout=120)
    pages = sorted(folder.glob(f"{stem}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [p.read_bytes() for p in pages]


@pytest.mark.parametrize("kind", ["typical", "extreme"])
def test_report_pages_match_their_snapshots(kind, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # no creation date is written anyway; this keeps it so
    pages = render(report.build_pdf(**report_inputs(kind)), tmp_path, kind)
    stored = sorted(SNAPSHOTS.glob(f"report_{kind}-*.png"))
    if UPDATE:
        for old in stored:
            old.unlink()
    else:
        assert len(pages) == len(stored), f"{len(pages)} page(s) rendered, {len(stored)} stored (pages in {tmp_path})"
    for i, page in enumerate(pages, 1):  # full resolution; any changed pixel counts towards the mean
        assert_snapshot(page, f"report_{kind}-{i}.png", max_mean=TOLERANCE, max_changed=1.0, half=False)
