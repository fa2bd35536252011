"""Browser tests for teaching: the case library, a case opened in the scan check (outline, peak sentence, report
PDF downloaded, opened by pypdf and rendered by pdftoppm), the quiz with a click on the image, and the time from
drop to answer. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from brainscan.scans import cases as case_lib

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
PREDICTION = "The model's answer: "


def wait_idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()


def wait_heatmap(page) -> None:
    page.get_by_text(PREDICTION).first.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('img[alt=\"Heatmap overlay on the scan\"]');"
        " return i && i.complete && i.naturalWidth > 0; }")
    wait_idle(page)


def test_case_library_to_scan_check_with_outline_and_report(page, app_url, shoot, tmp_path):
    page.goto(f"{app_url}/cases")
    page.get_by_role("heading", name="Case library", exact=True).wait_for()
    wait_idle(page)
    page.wait_for_timeout(500)
    no_exception(page)
    shoot(page, "cases.png")
    # filter: FLAIR gliomas only
    page.locator('[data-testid="stButtonGroup"]').first.get_by_text("Glioma", exact=True).click()
    wait_idle(page)
    page.locator('[data-testid="stButtonGroup"]').nth(1).get_by_text("FLAIR", exact=True).click()
    wait_idle(page)
    n = sum(c.truth == "glioma" and c.sequence == "flair" for c in case_lib.load_library())
    page.get_by_text(f"{n} of {len(case_lib.load_library())} cases shown.").wait_for()
    page.get_by_role("button", name="Open in the scan check").first.click()
    page.get_by_role("heading", name="Scan check", exact=True).wait_for()
    wait_heatmap(page)
    page.get_by_text("Case library case01: the truth is Glioma").wait_for()
    assert page.get_by_text("true tumour outline").count() >= 1
    no_exception(page)
    page.wait_for_timeout(300)
    shoot(page, "scan_case_outline.png")

    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Download the report (PDF)").click()
    pdf_path = tmp_path / "report.pdf"
    dl.value.save_as(pdf_path)
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(pdf_path.read_bytes()))
    text = " ".join(reader.pages[0].extract_text().split())
    assert len(reader.pages) == 1 and "File: case01.png" in text and "not a medical device" in text
    if shutil.which("pdftoppm"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "70", "-png", "-singlefile", str(pdf_path), str(SHOTS / "report_pdf")],
                       check=True, timeout=60)
        rendered = cv2.imread(str(SHOTS / "report_pdf.png"))
        assert rendered is not None and rendered.std() > 20
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Download the panels (PNG, zip)").click()
    assert dl.value.suggested_filename.endswith("_panels.zip")


def test_scan_check_stays_under_two_seconds(page, app_url):
    img = cv2.imread(str(case_lib.load_library()[3].path), cv2.IMREAD_GRAYSCALE)

    def drop(name: str, data: bytes) -> float:
        page.goto(f"{app_url}/scan")
        page.get_by_role("heading", name="Scan check", exact=True).wait_for()
        wait_idle(page)
        t = time.perf_counter()
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            [{"name": name, "mimeType": "image/png", "buffer": data}])
        wait_heatmap(page)
        return time.perf_counter() - t

    drop("warm.png", cv2.imencode(".png", img)[1].tobytes())  # the model loads on the first scan
    seconds = drop("timed.png", cv2.imencode(".png", np.ascontiguousarray(img[::-1]))[1].tobytes())
    no_exception(page)
    print(f"drop to answer: {seconds:.2f} s")
    assert seconds < 2.0, f"drop to answer took {seconds:.2f} s"


def test_quiz_with_a_click(page, app_url, shoot):
    page.goto(f"{app_url}/quiz?n=3&seed=5")
    page.get_by_role("heading", name="Quiz", exact=True).wait_for()
    wait_idle(page)
    page.get_by_text("Case 1 of 3").wait_for()
    chart = page.locator('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg').first
    chart.wait_for()
    box = chart.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.45)
    page.get_by_text("Your click: x=").wait_for()
    wait_idle(page)
    page.get_by_text("Yes", exact=True).click()
    wait_idle(page)
    page.get_by_text("Glioma", exact=True).click()
    wait_idle(page)
    shoot(page, "quiz_question.png")
    page.get_by_role("button", name="Check my answer").click()
    page.get_by_text("The model said:").wait_for()
    page.get_by_text("Score after 1 of 3 cases").wait_for()
    wait_idle(page)
    page.wait_for_timeout(300)
    no_exception(page)
    shoot(page, "quiz_answer.png")
    page.get_by_role("button", name="Next case").click()
    page.get_by_text("Case 2 of 3").wait_for()
    no_exception(page)


def test_model_page_teaching_sections(page, app_url, shoot):
    page.goto(f"{app_url}/model")
    page.get_by_role("heading", name="Model and metrics", exact=True).wait_for()
    wait_idle(page)
    page.get_by_text("Uncertainty and deferral").wait_for()
    page.get_by_text("Heatmap sanity check").wait_for()
    no_exception(page)
    page.get_by_text("Heatmap sanity check").scroll_into_view_if_needed()
    shoot(page, "model_teaching.png")
