"""The PDF report's pages, rendered, look as they did: each page of the typical and the extreme report
(tests/report_pdf.py, fixed inputs, no trained model) is rendered by pdftoppm in gray at 50 dpi and compared with
the PNG stored under tests/snapshots/ (mean absolute difference per pixel, 0-255).

After a deliberate change of the report (layout, wording, figures), look at the new pages and store them:

    BRAINSCAN_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_report_snapshots.py

A failing comparison writes the page it rendered and the difference (white = changed) next to the test's
temporary folder, named in the message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from report_pdf import report_inputs

from brainscan.app import report

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
DPI = 50
# Measured on the typical page: other probabilities (digits, bar lengths) 0.06, another heatmap caption 0.20, one
# more line at the end 0.10; one line more in the middle (every section below moves down) 5.7; the layout before
# the report was measured (sections at fixed heights, running into each other) 62.8. So a few changed words pass,
# anything that moves a section fails; that no two lines overlap is tested line by line in tests/test_report.py.
TOLERANCE = 0.5

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed")


def render(pdf: bytes, folder: Path, stem: str) -> list[np.ndarray]:
    """Each page of pdf as a gray uint8 image at DPI."""
    src = folder / f"{stem}.pdf"
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", str(src), str(folder / stem)], check=True,
                   timeout=120)
    pages = sorted(folder.glob(f"{stem}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in pages]


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference per pixel (0-255); inf when the sizes differ."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) if a.shape == b.shape else float("inf")


@pytest.mark.parametrize("kind", ["typical", "extreme"])
def test_report_pages_match_their_snapshots(kind, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # no creation date is written anyway; this keeps it so
    pages = render(report.build_pdf(**report_inputs(kind)), tmp_path, kind)
    stored = sorted(SNAPSHOTS.glob(f"report_{kind}-*.png"))
    if os.environ.get("BRAINSCAN_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        for old in stored:
            old.unlink()
        for i, page in enumerate(pages, 1):
            cv2.imwrite(str(SNAPSHOTS / f"report_{kind}-{i}.png"), page, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        pytest.skip(f"stored {len(pages)} page(s) of the {kind} report under {SNAPSHOTS}")
    assert stored, f"no snapshot of the {kind} report; store one with BRAINSCAN_UPDATE_SNAPSHOTS=1"
    assert len(pages) == len(stored), f"{len(pages)} page(s) rendered, {len(stored)} stored (pages in {tmp_path})"
    for i, (page, path) in enumerate(zip(pages, stored, strict=True), 1):
        ref = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        diff = difference(page, ref)
        if diff > TOLERANCE:
            if page.shape == ref.shape:
                cv2.imwrite(str(tmp_path / f"{kind}-{i}-diff.png"),
                            np.where(page != ref, 255, 0).astype(np.uint8))
            pytest.fail(f"page {i} of the {kind} report differs from {path.name} by {diff:.2f} per pixel "
                        f"(at most {TOLERANCE}); rendered: {tmp_path / f'{kind}-{i}.png'}")
