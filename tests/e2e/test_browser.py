"""Browser tests: a real Chromium drives `streamlit run streamlit_app.py` (uploads, errors, every page).

Screenshots go to artifacts/screenshots/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from brainscan.scans.synthetic import phantom

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PREDICTION = "The model's answer: "


def png_bytes(size: int = 256, seed: int = 3) -> bytes:
    img, _ = phantom(size, lesion=True, seed=seed)
    ok, buf = cv2.imencode(".png", np.rint(img * 255).astype(np.uint8))
    assert ok
    return buf.tobytes()


def dicom_bytes(make_dicom) -> bytes:
    slices = np.stack([np.rint(phantom(128, lesion=True, seed=20 + i)[0] * 1000).astype(np.uint16)
                       for i in range(3)])
    return make_dicom(slices, WindowCenter=500, WindowWidth=1000)


def wait_idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")


def assert_no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()


def open_page(page, url: str, heading: str | None) -> None:
    page.goto(url)
    if heading:
        page.get_by_role("heading", name=heading, exact=True).wait_for()
    wait_idle(page)
    assert_no_exception(page)


def drop(page, *files: tuple[str, bytes, str]) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        [{"name": n, "mimeType": m, "buffer": b} for n, b, m in files])


def wait_for_result(page) -> None:
    page.get_by_text(PREDICTION).first.wait_for()
    heat = page.locator('img[alt="Heatmap overlay on the scan"]')
    heat.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('img[alt=\"Heatmap overlay on the scan\"]');"
        " return i && i.complete && i.naturalWidth > 0; }")
    wait_idle(page)


def test_png_and_extensionless_dicom(page, app_url, make_dicom, shoot):
    # The server's very first request is this deep link: it must still run through streamlit_app.py's
    # navigation (top menu, wide layout), not Streamlit's legacy pages/ folder mode (sidebar menu).
    open_page(page, f"{app_url}/scan", "Scan check")
    page.locator('[data-testid="stTopNavLink"]', has_text="Model and metrics").wait_for()
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    shoot(page, "scan_empty.png")
    drop(page, ("phantom.png", png_bytes(), "image/png"))
    wait_for_result(page)
    assert_no_exception(page)
    page.get_by_text("Result for phantom.png").wait_for()
    shoot(page, "scan_png.png")

    open_page(page, f"{app_url}/scan", "Scan check")  # a fresh session
    drop(page, ("IM0001", dicom_bytes(make_dicom), "application/octet-stream"))
    wait_for_result(page)
    page.get_by_text("Slice (frame) of this 3-frame file").wait_for()
    page.get_by_text("DICOM information").wait_for()
    content = page.content()
    for secret in ("Doe", "DOE-4711", "19800101"):
        assert secret not in content
    assert_no_exception(page)
    shoot(page, "scan_dicom.png")


def test_several_files_and_a_corrupt_one(page, app_url, shoot):
    open_page(page, f"{app_url}/scan", "Scan check")
    drop(page, ("a.png", png_bytes(seed=4), "image/png"), ("b.png", png_bytes(seed=5), "image/png"),
         ("broken.png", b"this is text, not an image\n" * 10, "image/png"))
    page.get_by_text("broken.png is not an image or DICOM file we can read.").first.wait_for()
    wait_for_result(page)
    page.get_by_text("Results for 3 files").wait_for()
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    assert page.locator('[data-testid="stAlertContentError"]').count() >= 1
    assert_no_exception(page)
    shoot(page, "scan_table.png")


def test_corrupt_file_alone_then_a_good_one(page, app_url, shoot):
    open_page(page, f"{app_url}/scan", "Scan check")
    drop(page, ("scan.dcm", b"\x00\x01garbage" * 50, "application/dicom"))
    page.get_by_text("scan.dcm is not an image or DICOM file we can read.").wait_for()
    wait_idle(page)
    assert_no_exception(page)
    shoot(page, "scan_error.png")
    drop(page, ("good.png", png_bytes(seed=6), "image/png"))
    wait_for_result(page)
    assert_no_exception(page)


def test_every_page(page, app_url, shoot):
    pages = [("", "BrainScan", "home"), ("scan", "Scan check", "scan"), ("model", "Model and metrics", "model")]
    if (ROOT / "pages" / "train.py").exists():
        pages.append(("train", None, "train"))
    for path, heading, shot in pages:
        open_page(page, f"{app_url}/{path}", heading)
        page.wait_for_timeout(500)  # let charts and images settle before the screenshot
        assert_no_exception(page)
        shoot(page, f"{shot}.png")
    # The top navigation reaches every page too.
    page.goto(app_url)
    page.get_by_role("heading", name="BrainScan", exact=True).wait_for()
    for _, heading, _ in pages[1:]:
        if heading:
            page.locator('[data-testid="stTopNavLink"]', has_text=heading).first.click()
            page.get_by_role("heading", name=heading, exact=True).wait_for()
            wait_idle(page)
            assert_no_exception(page)
