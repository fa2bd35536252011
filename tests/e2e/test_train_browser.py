"""The Train page in a real Chromium against `streamlit run`: dataset summary, a 1-epoch run, results.

Screenshots go to artifacts/screenshots/train_*.png.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def shoot(page, name: str) -> None:
    """A screenshot of the whole app: Streamlit scrolls inside stMain, so grow the viewport to its height."""
    size = page.viewport_size
    height = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer]')].map(e => e.scrollHeight), 800)")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / name))
    page.set_viewport_size(size)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from brainscan.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("e2e-data") / "phantoms", per_class=10, size=64)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    tmp = tmp_path_factory.mktemp("e2e-train")
    port = _free_port()
    app = "streamlit_app.py" if (ROOT / "streamlit_app.py").is_file() else "pages/train.py"
    env = dict(os.environ, BRAINSCAN_RUNS_DIR=str(tmp / "runs"), BRAINSCAN_MODELS_DIR=str(tmp / "models"),
               PYTHONPATH=str(ROOT))
    log = open(tmp / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", app, "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("streamlit did not start:\n" + (tmp / "streamlit.log").read_text()[-3000:])
    try:
        yield base, tmp
    finally:
        from brainscan import runs

        active = runs.active_run(tmp / "runs")
        if active is not None:
            runs.stop_run(active.path, timeout=5)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_train_page_one_epoch_run(server: tuple[str, Path], dataset: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, tmp = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        try:
            page.goto(url)
            train_link = page.get_by_role("link", name="Train a model")
            if train_link.count() or (ROOT / "streamlit_app.py").is_file():  # the app's own navigation
                train_link.click()
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
