"""Each page at a fixed viewport after a fixed action, compared with its stored snapshot (tests/snapshot.py;
update with BRAINSCAN_UPDATE_SNAPSHOTS=1 and look at the images before committing). The shipped model answers
(LiteRT, deterministic), the runs folder is empty, so what a page shows depends only on the code and the data."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from brainscan.appserver import screenshot, start_server, stop_server, wait_healthy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from snapshot import assert_snapshot  # noqa: E402 - the tests folder's own helper

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOT = {"animations": "disabled", "caret": "hide"}


@pytest.fixture(scope="module")
def shipped_url(tmp_path_factory) -> Iterator[str]:
    runs = tmp_path_factory.mktemp("snapshot-runs")
    env = {"BRAINSCAN_MODEL": str(ROOT / "models" / "default"), "BRAINSCAN_RUNS_DIR": str(runs)}
    proc, url, log = start_server(env)
    try:
        wait_healthy(url, proc, timeout=120)
        yield url
    finally:
        stop_server(proc, log)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, device_scale_factor=1,
                                  reduced_motion="reduce")
    pg = context.new_page()
    pg.set_default_timeout(120_000)
    yield pg
    context.close()


def settle(page) -> None:
    """The script has finished, every image has loaded and fonts are in."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")
    page.wait_for_function("() => [...document.images].every(i => i.complete) && document.fonts.status == 'loaded'")
    page.wait_for_timeout(500)


def open_page(page, url: str, path: str, heading: str) -> None:
    page.goto(f"{url}/{path}")
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    settle(page)


def test_home(page, shipped_url):
    open_page(page, shipped_url, "", "BrainScan")
    page.get_by_text("The model is loaded and ready.").wait_for()
    settle(page)
    assert_snapshot(screenshot(page, **SHOT), "pages/home.png")


def test_scan_check_of_a_sample(page, shipped_url):
    open_page(page, shipped_url, "scan", "Scan check")
    page.get_by_text("lgg_glioma_flair.png", exact=True).click()
    page.get_by_text("The model's answer: ").first.wait_for()
    page.locator('img[alt="Heatmap overlay on the scan"]').wait_for()
    settle(page)
    assert_snapshot(screenshot(page, **SHOT), "pages/scan.png")


@pytest.mark.parametrize(("path", "heading"), [("model", "Model and metrics"), ("cases", "Case library"),
                                              ("train", "Train a model")])
def test_page_as_opened(page, shipped_url, path, heading):
    open_page(page, shipped_url, path, heading)
    assert_snapshot(screenshot(page, **SHOT), f"pages/{path}.png")


def test_quiz_first_case(page, shipped_url):
    open_page(page, shipped_url, "quiz", "Quiz")
    page.get_by_text("Case 1 of 8").wait_for()
    settle(page)
    assert_snapshot(screenshot(page, **SHOT), "pages/quiz.png")

