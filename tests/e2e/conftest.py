"""Fixtures for browser tests: a real `streamlit run` server and a headless Chromium (Playwright sync API)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy in {timeout:.0f} s")


def start_server(model_dir: str | None, port: int | None = None, log_path: Path | None = None) -> tuple:
    """Start `streamlit run streamlit_app.py` on 127.0.0.1; returns (process, base url, log file)."""
    port = port or free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if model_dir:
        env["BRAINSCAN_MODEL"] = model_dir
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # closed in stop_server
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}", log


def stop_server(proc: subprocess.Popen, log) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if log not in (None, subprocess.DEVNULL):
        log.close()


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
    proc, url, log = start_server(tiny_model, log_path=log_path)
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


def screenshot(page, path: Path) -> None:
    """Screenshot of the whole app. Streamlit scrolls inside its main container, so full_page alone would cut
    the page at the viewport: grow the viewport to the content height first."""
    size = page.viewport_size
    height = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer]')].map(e => e.scrollHeight), 600)")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 8000)})
    page.wait_for_timeout(400)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
