"""Benchmark the real app: `streamlit run streamlit_app.py` on 127.0.0.1, driven by headless Chromium.

Measures
  (a) cold start: from starting the server process to the Home page's main heading being visible,
  (b) one scan check: from setting a file on the uploader to the answer and the heatmap image being visible
      (the same browser session; the first one may wait for the model, which starts loading at the first page
      view), for synthetic PNG slices and for the sample DICOM slice (sample_images/lgg_glioma_flair.dcm),
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
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from brainscan.appserver import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402

PREDICTION = re.compile("The model's answer: |The model thinks this scan most likely shows")  # this and older wording
HEATMAP = 'img[alt="Heatmap overlay on the scan"]'


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

    from brainscan.scans.synthetic import phantom

    img, _ = phantom(size, lesion=True, seed=seed)
    ok, buf = cv2.imencode(".png", np.rint(img * 255).astype(np.uint8))
    assert ok
    return buf.tobytes()


def wait_idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")


def one_scan(page, url: str, data: bytes, name: str, mime: str = "image/png") -> float:
    page.goto(f"{url}/scan")
    page.get_by_role("heading", name="Scan check", exact=True).wait_for()
    wait_idle(page)
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    t = time.perf_counter()
    uploader.set_input_files([{"name": name, "mimeType": mime, "buffer": data}])
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
    ap.add_argument("--pause", type=float, default=0.0, help="seconds on the Home page before the first scan")
    args = ap.parse_args()

    if (ROOT / "models" / "default" / "card.json").is_file():
        os.environ.pop("BRAINSCAN_MODEL", None)  # the server inherits this process's environment
        model = "models/default"
    else:
        model = args.model or os.environ.get("BRAINSCAN_MODEL")
        if not model:
            print("No models/default and no --model / $BRAINSCAN_MODEL given.", file=sys.stderr)
            return 2
        os.environ["BRAINSCAN_MODEL"] = model

    from playwright.sync_api import sync_playwright

    result: dict[str, object] = {"model": model, "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                                 "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(args.timeout * 1000)
        t0 = time.perf_counter()
        proc, url, log = start_server()
        try:
            wait_healthy(url, proc, args.timeout, poll=0.05)
            result["server_healthy_s"] = round(time.perf_counter() - t0, 2)
            page.goto(url)
            page.get_by_role("heading", name="BrainScan", exact=True).wait_for()
            result["cold_home_heading_visible_s"] = round(time.perf_counter() - t0, 2)
            result["home_after_healthy_s"] = round(result["cold_home_heading_visible_s"]
                                                   - result["server_healthy_s"], 2)
            result["memory_after_home"] = memory(proc.pid)
            page.wait_for_timeout(1000 * args.pause)  # a visitor reads the Home page before opening the Scan page

            times = [one_scan(page, url, test_png(args.size, seed), f"bench_{seed}.png")
                     for seed in range(args.repeats)]
            result["scan_first_s"] = round(times[0], 2)
            rest = times[1:] or times
            result["scan_median_s"] = round(statistics.median(rest), 2)
            result["scan_all_s"] = [round(t, 2) for t in times]
            result["scan_image"] = f"synthetic phantom PNG {args.size}x{args.size}, Grad-CAM"
            dicom = (ROOT / "sample_images" / "lgg_glioma_flair.dcm").read_bytes()
            times = [one_scan(page, url, dicom, f"slice_{k}.dcm", "application/dicom") for k in range(args.repeats)]
            result["dicom_first_s"] = round(times[0], 2)
            result["dicom_median_s"] = round(statistics.median(times[1:] or times), 2)
            result["dicom_all_s"] = [round(t, 2) for t in times]
            result["memory_after_scans"] = memory(proc.pid)
        finally:
            browser.close()
            stop_server(proc, log)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
