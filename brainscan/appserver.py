"""Run the app as users get it, for the browser tests and scripts/bench_app.py: `streamlit run
streamlit_app.py` on 127.0.0.1, and the headless Chromium flags they drive it with. No TensorFlow here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from brainscan.config import REPO_ROOT as ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str] | None = None, port: int | None = None, log_path: Path | None = None) -> tuple:
    """Start the app with these environment variables added; returns (process, base url, log file)."""
    port = port or free_port()
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in stop_server
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}", log


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float, poll: float = 0.2) -> None:
    """Return once Streamlit's health endpoint answers; raise if the server exits or the time runs out."""
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
        time.sleep(poll)
    raise TimeoutError(f"{url} did not become healthy in {timeout:.0f} s")


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


def screenshot(page, path: Path | None = None, **options) -> bytes:
    """PNG screenshot of the whole app (also written to path, when given). Streamlit scrolls inside its main
    container, so full_page alone would cut the page at the viewport: grow the viewport to the content height
    first. options go to Playwright's page.screenshot (e.g. animations="disabled", caret="hide")."""
    size = page.viewport_size
    height = page.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer]')].map(e => e.scrollHeight), 600)")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 8000)})
    page.wait_for_timeout(400)
    png = page.screenshot(path=None if path is None else str(path), **options)
    page.set_viewport_size(size)
    return png
