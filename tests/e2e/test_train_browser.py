"""The Train page in a real Chromium against `streamlit run`: dataset summary, a 1-epoch run, results.

Screenshots go to artifacts/screenshots/train_*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from brainscan.appserver import CHROMIUM_ARGS, start_server, stop_server, wait_healthy

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from brainscan.scans.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("e2e-data") / "phantoms", per_class=10, size=64)


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium_path) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("e2e-train")
    env = {"BRAINSCAN_RUNS_DIR": str(tmp / "runs"), "BRAINSCAN_MODELS_DIR": str(tmp / "models"),
           "PYTHONPATH": str(ROOT)}
    proc, base, log = start_server(env, log_path=tmp / "streamlit.log")
    try:
        wait_healthy(base, proc, timeout=90)
    except (RuntimeError, TimeoutError) as err:
        stop_server(proc, log)
        pytest.fail(f"streamlit did not start ({err}):\n" + (tmp / "streamlit.log").read_text()[-3000:])
    try:
        yield base, tmp
    finally:
        from brainscan import runs

        active = runs.active_run(tmp / "runs")
        if active is not None:
            runs.stop_run(active.path, timeout=5)
        stop_server(proc, log)


def test_train_page_one_epoch_run(server: tuple[str, Path], dataset: Path, chromium_path: str, shoot) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, tmp = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        try:
            page.goto(url)
            page.get_by_role("link", name="Train a model").click()
            expect(page.get_by_role("heading", name="1. Dataset")).to_be_visible(timeout=60_000)
            box = page.get_by_role("textbox", name="Dataset folder")
            box.fill(str(dataset))
            box.press("Enter")
            expect(page.get_by_text("Images per class")).to_be_visible(timeout=60_000)
            expect(page.get_by_test_id("stMetricValue").first).to_have_text("20", timeout=30_000)
            shoot(page, "train_dataset.png")

            epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
            epochs.fill("1")
            page.get_by_role("button", name="Start training").click()
            expect(page.get_by_text("Started run")).to_be_visible(timeout=30_000)
            expect(page.get_by_role("button", name="Stop training")).to_be_visible(timeout=30_000)
            shoot(page, "train_progress.png")

            expect(page.get_by_text(re.compile(r"Run \S+ finished")).first).to_be_visible(timeout=240_000)
            expect(page.get_by_role("button", name="Promote to models/")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Calibration error (ECE)")).to_be_visible()
            images = page.get_by_test_id("stImage")  # st.pyplot: curves, confusion matrix, ROC, calibration
            expect(images.nth(2)).to_be_visible(timeout=30_000)
            assert not page.get_by_test_id("stException").count()
            page.wait_for_timeout(2500)  # one more fragment tick: nothing may flip back to "running"
            picker = page.get_by_test_id("stSelectbox").filter(has_text="Run").locator("input")
            expect(picker).to_have_value(re.compile(r"\(finished\)$"))  # the picker's label follows the state
            shoot(page, "train_finished.png")

            page.get_by_text("Replace the model in models/default").click()
            page.get_by_role("button", name="Promote to models/").click()
            expect(page.get_by_text("is now the model in models/default")).to_be_visible(timeout=30_000)
            assert (tmp / "models" / "default" / "card.json").is_file()
        finally:
            browser.close()
