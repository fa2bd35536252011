"""Browser test (issue 20): a real Chromium drops a 22-slice 512 x 512 DICOM series and a NIfTI volume on the Scan
page; each gives one answer for the volume, the strip, the views through the peak and the slice view. The series'
drop-to-answer time is the issue's budget (3 s) and is the one timing asserted. The files are dropped from disk
(their paths handed to the browser, as a user's drop hands them): handing Playwright 11 MB of buffers instead takes
it about 2 s to copy them into the browser before the page sees any file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from test_browser import assert_no_exception, drop, open_page, png_bytes, wait_for_result, wait_idle

from brainscan.scans.synthetic import dicom_series, nifti_bytes, phantom_volume

pytestmark = pytest.mark.e2e

DROP_TO_ANSWER_S = 3.0


def drop_paths(page, paths: list[Path]) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files([str(p) for p in paths])


def volume_answer(page, name: str) -> None:
    page.get_by_text(f"Result for {name}").wait_for()
    page.get_by_text("Volume rule: ").first.wait_for()


def test_a_dicom_series_and_a_nifti_give_one_answer_each(page, app_url, shoot, tmp_path):
    open_page(page, f"{app_url}/scan", "Scan check")
    drop(page, ("warm.png", png_bytes(seed=8), "image/png"))  # the model is loaded and warm before the clock runs
    wait_for_result(page)

    d = phantom_volume(22, 512, lesion=(11, 150, 330), lesion_radius=40, seed=9)
    paths = []
    for name, data in dicom_series(d, step=5.0, spacing=(0.45, 0.45)):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    open_page(page, f"{app_url}/scan", "Scan check")
    start = time.perf_counter()
    drop_paths(page, paths)
    volume_answer(page, "IM0001.dcm and 21 more (DICOM series, 22 files)")
    page.get_by_text("The model's answer: ").first.wait_for()
    elapsed = time.perf_counter() - start
    print(f"22-slice 512x512 series: drop to answer {elapsed:.2f} s")
    wait_idle(page)
    assert_no_exception(page)
    page.get_by_text("22 axial slices: ").first.wait_for()
    for caption in ("Axial, slice", "Coronal, through", "Sagittal, through", "Red: at or above"):
        page.get_by_text(caption).first.wait_for()
    page.locator('img[alt="Heatmap overlay on the scan"]').wait_for()  # the chosen slice's own view
    page.get_by_text("Download the volume report (PDF)").wait_for()
    shoot(page, "scan_dicom_series.png")
    assert elapsed <= DROP_TO_ANSWER_S, f"drop to answer took {elapsed:.2f} s"

    v = phantom_volume(30, 128, lesion=(15, 40, 80), lesion_radius=12, seed=10)
    ras = np.ascontiguousarray(v.transpose(2, 1, 0)[::-1, ::-1, :])
    open_page(page, f"{app_url}/scan", "Scan check")
    drop(page, ("head.nii.gz", nifti_bytes(ras, np.diag([1.5, 1.5, 3.0, 1.0])), "application/gzip"))
    volume_answer(page, "head.nii.gz")
    page.get_by_text("30 axial slices: ").first.wait_for()
    page.locator('img[alt="Heatmap overlay on the scan"]').wait_for()
    wait_idle(page)
    assert_no_exception(page)
    shoot(page, "scan_nifti.png")
