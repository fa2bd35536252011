"""Fixtures for browser tests: a real `streamlit run` server and a headless Chromium (Playwright sync API)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from brainscan.appserver import CHROMIUM, CHROMIUM_ARGS, screenshot, start_server, stop_server, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; browser tests must run in CI (install the chromium package).")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package to run the browser tests).")
    return CHROMIUM


@pytest.fixture(scope="session")
def app_url(tiny_model, tmp_path_factory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    proc, url, log = start_server({"BRAINSCAN_MODEL": tiny_model}, log_path=log_path)
    try:
        wait_healthy(url, proc, timeout=120)
        yield url
    finally:
        stop_server(proc, log)
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        # Uncaught exceptions would appear in the server log even though users never see them.
        assert "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Module-scoped: other e2e modules may start their own Playwright (one sync instance at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    pg.set_default_timeout(120_000)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def shoot():
    """shoot(page, "name.png"): a screenshot into artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return lambda page, name: screenshot(page, SCREENSHOTS / name)

