"""Hosted mode in a real Chromium (issue 23, round two): a visitor is a browser. Against `streamlit run` with
BRAINSCAN_HOSTED=1, each browser context is one visitor (its own cookies) and its pages are that visitor's tabs:
nine tabs of one visitor get one run, the rest are refused in a sentence; a second visitor waits in the queue, and
its second tab takes that waiting run out of the queue. The server trains with tests/fake_brainscan_trainer.py (set
through a wrapper around Streamlit's command line), so no TensorFlow is needed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from brainscan.appserver import CHROMIUM_ARGS, free_port, stop_server, wait_healthy

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "fake_brainscan_trainer.py"
WRAPPER = ("import json, sys; import brainscan.runs.process as p; p.TRAINER = json.loads(sys.argv.pop(1)); "
           "from streamlit.web.cli import main; sys.argv[0] = 'streamlit'; main()")


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium_path) -> Iterator[tuple[str, Path]]:
    from brainscan.scans.synthetic import write_dataset

    tmp = tmp_path_factory.mktemp("e2e-hosted")
    phantoms = write_dataset(tmp / "phantoms", per_class=10, size=64)
    env = {"BRAINSCAN_HOSTED": "1", "BRAINSCAN_RUNS_DIR": str(tmp / "runs"),
           "BRAINSCAN_MODELS_DIR": str(tmp / "models"), "BRAINSCAN_DATASETS": f"Phantoms={phantoms}",
           "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    trainer = [sys.executable, str(FAKE), "--epoch-seconds=5", "train"]
    cmd = [sys.executable, "-c", WRAPPER, json.dumps(trainer), "run", "streamlit_app.py", "--server.headless",
           "true", "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats",
           "false", "--server.fileWatcherType", "none"]
    log = open(tmp / "streamlit.log", "w")  # noqa: SIM115 - closed by stop_server
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=120)
        yield url, tmp / "runs"
    finally:
        from brainscan import runs

        for info in runs.list_runs(tmp / "runs"):
            if info.state in ("running", "queued"):
                runs.stop_run(info.path, timeout=5)
        stop_server(proc, log)
        for pid_dir in Path("/proc").iterdir():  # the keeper process this server started for its runs folder
            if pid_dir.name.isdigit():
                try:
                    cmdline = (pid_dir / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"brainscan.runs.keeper" in cmdline and str(tmp / "runs").encode() in cmdline:
                    os.kill(int(pid_dir.name), 9)


def _tab(context, url: str):
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url + "/train")
    page.get_by_text("Images per class").first.wait_for(timeout=180_000)
    return page


def _start(page) -> str:
    page.get_by_role("spinbutton", name="Epochs", exact=True).fill("30")
    page.get_by_role("button", name="Start training").click()
    reply = re.compile(r"Started run|is number \d+ in the queue|You already have a run|queue is full")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        alerts = page.get_by_test_id("stAlert")
        for k in range(alerts.count()):
            text = alerts.nth(k).inner_text()
            if reply.search(text) and "Your run" not in text:
                return text
        time.sleep(0.3)
    return ""


def test_a_visitor_is_a_browser_not_a_tab(server: tuple[str, Path], chromium_path: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    from brainscan import runs

    url, runs_dir = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            a = browser.new_context(viewport={"width": 1280, "height": 1000})
            tabs = [_tab(a, url) for _ in range(9)]
            replies = [_start(t) for t in tabs]
            assert "Started run" in replies[0], replies
            assert all("You already have a run waiting or training in this browser" in r for r in replies[1:]), replies
            assert [r.state for r in runs.list_runs(runs_dir)] == ["running"]
            expect(tabs[4].get_by_role("button", name="Stop training")).to_be_visible(timeout=30_000)

            b = browser.new_context(viewport={"width": 1280, "height": 1000})
            b1 = _tab(b, url)
            assert "is number 1 in the queue" in _start(b1)
            waiting = next(r for r in runs.list_runs(runs_dir) if r.queued)
            b2 = _tab(b, url)
            expect(b2.get_by_text(f"Your run {waiting.name} is number 1 in the queue")).to_be_visible(timeout=30_000)
            b2.get_by_role("button", name="Leave the queue").click()
            expect(b2.get_by_text(f"Run {waiting.name} left the queue")).to_be_visible(timeout=30_000)
            assert runs.run_info(waiting.path).state == "stopped"
            expect(b1.get_by_role("button", name="Leave the queue")).to_have_count(0, timeout=30_000)
            assert not tabs[0].get_by_text("Leave the queue").count(), "A never saw B's run"
        finally:
            browser.close()
