"""Benchmark the real app: `streamlit run streamlit_app.py` on 127.0.0.1, driven by headless Chromium.

Measures
  (a) cold start: from starting the server process to the Home page's main heading being visible,
  (b) one scan check: from setting a file on the uploader to the prediction text and the heatmap image being
      visible (a fresh browser session each time; the first one may include loading the model),
  (c) the server's resident memory after the scan checks (VmRSS, split into anonymous and file-backed pages,
      and the peak VmHWM) from /proc/<pid>/status.
Prints one JSON object. Uses the model the app would use: models/default when it exists, else $BRAINSCAN_MODEL
(or --model).

    python scripts/bench_app.py [--repeats 5] [--size 512] [--model runs/smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PREDICTION = "The model thinks this scan most likely shows"
HEATMAP = 'img[alt="Heatmap overlay on the scan"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory(pid: int) -> dict[str, float]:
    text = Path(f"/proc/{pid}/status").read_text()
    out = {}
    for key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if m:
            out[f"{key}_mb"] = round(int(m.group(1)) / 1024, 1)
    return out


def test_png(size: int, seed: int) -> bytes:
    import cv2
    import numpy as np

    from brainscan.synthetic import phantom

    img, _ = phantom(size, lesion=True, seed=seed)
    ok, buf = cv2.imencode(".png", np.rint(img * 255).astype(np.uint8))
    assert ok
    return buf.tobytes()


def wait_idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")


def one_scan(page, url: str, data: bytes, name: str) -> float:
    page.goto(f"{url}/scan")
    page.get_by_role("heading", name="Scan check", exact=True).wait_for()
    wait_idle(page)
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    t = time.perf_counter()
    uploader.set_input_files([{"name": name, "mimeType": "image/png", "buffer": data}])
    page.get_by_text(PREDICTION).first.wait_for()
    page.wait_for_function(f"() => {{ const i = document.querySelector('{HEATMAP}');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    elapsed = time.perf_counter() - t
    wait_idle(page)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="scan checks to time (default 5)")
    ap.add_argument("--size", type=int, default=512, help="side of the synthetic test slice in pixels")
    ap.add_argument("--model", help="model folder when models/default does not exist (else $BRAINSCAN_MODEL)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for any step")
    args = ap.parse_args()

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if (ROOT / "models" / "default" / "card.json").is_file():
        env.pop("BRAINSCAN_MODEL", None)
        model = "models/default"
    else:
        model = args.model or env.get("BRAINSCAN_MODEL")
        if not model:
            print("No models/default and no --model / $BRAINSCAN_MODEL given.", file=sys.stderr)
            return 2
        env["BRAINSCAN_MODEL"] = model

    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    result: dict[str, object] = {"model": model, "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                                 "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(args.timeout * 1000)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + args.timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("streamlit did not start") from None
                    time.sleep(0.05)
            result["server_healthy_s"] = round(time.perf_counter() - t0, 2)
            page.goto(url)
            page.get_by_role("heading", name="BrainScan", exact=True).wait_for()
            result["cold_home_heading_visible_s"] = round(time.perf_counter() - t0, 2)
            result["memory_after_home"] = memory(proc.pid)

            times = [one_scan(page, url, test_png(args.size, seed), f"bench_{seed}.png")
                     for seed in range(args.repeats)]
            result["scan_first_s"] = round(times[0], 2)
            rest = times[1:] or times
            result["scan_median_s"] = round(statistics.median(rest), 2)
            result["scan_all_s"] = [round(t, 2) for t in times]
            result["scan_image"] = f"synthetic phantom PNG {args.size}x{args.size}, Grad-CAM"
            result["memory_after_scans"] = memory(proc.pid)
        finally:
            browser.close()
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
