"""Bounded load test of the real app in hosted mode: concurrent visitors uploading scans.

Starts `streamlit run streamlit_app.py` (BRAINSCAN_HOSTED=1, its own runs folder) and one headless Chromium;
each of --sessions browser contexts is one anonymous visitor who, --uploads times in a row, opens the Scan page
(a new Streamlit session each time) and uploads one file (all visitors at once, in threads). Files cycle
through an ordinary 512 px slice and, with --hostile, the 6300x6300 RGBA PNG and a 13000x13000 PNG (over the
pixel limit, refused). Latency is from setting the file on the uploader to the answer (or the refusal) being
visible. The server's memory
(VmRSS, VmHWM of the Streamlit process) is sampled every 0.5 s, and once more --settle seconds after the
visitors left. Prints one JSON object (--out writes it too). Stops after --timeout seconds whatever happens.

    python scripts/load_test.py [--sessions 4] [--uploads 3] [--hostile] [--out artifacts/load_test.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from brainscan.appserver import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402

ANSWER = "The model thinks this scan most likely shows"


def memory(pid: int) -> dict[str, float]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for key in ("VmRSS", "VmHWM"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        if m:
            out[key] = round(int(m.group(1)) / 1024, 1)
    return out


def files(hostile: bool) -> list[tuple[str, bytes, bool]]:
    """(name, bytes, answer expected) to cycle through."""
    import numpy as np
    from PIL import Image, ImageDraw

    from brainscan.scans.synthetic import phantom

    def png(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    slice_, _ = phantom(512, lesion=True, seed=1)
    out = [("slice_512.png", png(Image.fromarray(np.rint(slice_ * 255).astype(np.uint8))), True)]
    if hostile:
        big = Image.new("RGBA", (6300, 6300))
        ImageDraw.Draw(big).ellipse([1500, 1500, 4800, 4800], fill=(200, 180, 160, 255))
        out.append(("rgba_6300.png", png(big), True))
        out.append(("zeros_13000.png", png(Image.new("L", (13000, 13000))), False))
    return out


def visitor(browser, url: str, uploads: list[tuple[str, bytes, bool]], timeout_s: float, out: list) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(min(timeout_s, 180) * 1000)  # a stuck step is reported, not waited on for ever
    for name, data, answer in uploads:
        try:
            page.goto(f"{url}/scan")  # a fresh page (and Streamlit session) per upload, as a returning visitor
            page.get_by_role("heading", name="Scan check", exact=True).wait_for()
            uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            t = time.perf_counter()
            uploader.set_input_files([{"name": name, "mimeType": "image/png", "buffer": data}])
            if answer:
                page.get_by_text(ANSWER).first.wait_for()
            else:
                page.locator('[data-testid="stAlertContentError"]').first.wait_for()
            out.append({"file": name, "seconds": time.perf_counter() - t})
        except Exception as err:  # noqa: BLE001 - a failed upload is reported, not fatal
            out.append({"error": f"{name}: {type(err).__name__}: {str(err).splitlines()[0][:200]}"})
    context.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--uploads", type=int, default=3, help="files per visitor")
    ap.add_argument("--hostile", action="store_true", help="mix in the large RGBA and over-limit PNGs")
    ap.add_argument("--settle", type=float, default=30.0, help="seconds to wait after the visitors left")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    cycle = files(args.hostile)
    samples: list[tuple[float, dict]] = []
    results: list[dict] = []
    t_end = time.monotonic() + args.timeout
    with tempfile.TemporaryDirectory(prefix="load-test-") as tmp:
        env = {"BRAINSCAN_HOSTED": "1", "BRAINSCAN_RUNS_DIR": str(Path(tmp) / "runs")}
        proc, url, log = start_server(env, log_path=Path(tmp) / "server.log")
        stop = threading.Event()
        t0 = time.monotonic()

        def sampler() -> None:
            while not stop.is_set():
                samples.append((round(time.monotonic() - t0, 1), memory(proc.pid)))
                stop.wait(0.5)

        threading.Thread(target=sampler, daemon=True).start()
        try:
            wait_healthy(url, proc, 120)
            idle = memory(proc.pid)
            # Playwright's sync API is bound to one thread: every visitor gets its own Playwright and Chromium.
            threads = []
            per_visitor: list[list] = [[] for _ in range(args.sessions)]

            def run_visitor(i: int) -> None:
                with sync_playwright() as pw:
                    b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                    try:
                        uploads = [cycle[(i + k) % len(cycle)] for k in range(args.uploads)]
                        visitor(b, url, uploads, max(10.0, t_end - time.monotonic()), per_visitor[i])
                    finally:
                        b.close()

            t_start = time.monotonic()
            for i in range(args.sessions):
                th = threading.Thread(target=run_visitor, args=(i,), daemon=True)
                th.start()
                threads.append(th)
            for th in threads:
                th.join(max(1.0, t_end - time.monotonic()))
            wall = time.monotonic() - t_start
            for rows in per_visitor:
                results.extend(rows)
            during_peak = max((m.get("VmRSS", 0) for _, m in samples), default=0)
            time.sleep(max(0.0, min(args.settle, t_end - time.monotonic())))
            settled = memory(proc.pid)
        finally:
            stop.set()
            stop_server(proc, log)
        server_log = (Path(tmp) / "server.log").read_text(errors="replace")
    lat = sorted(r["seconds"] for r in results if "seconds" in r)

    def pct(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))], 2) if lat else None

    by_file: dict[str, list[float]] = {}
    for r in results:
        if "seconds" in r:
            by_file.setdefault(r["file"], []).append(r["seconds"])
    report = {
        "command": "python scripts/load_test.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{os.cpu_count()} CPU cores, load average at end {[round(x, 2) for x in os.getloadavg()]}",
        "sessions": args.sessions, "uploads_per_session": args.uploads, "wall_s": round(wall, 1),
        "answered": len(lat), "errors": [r["error"] for r in results if "error" in r],
        "latency_s": {"median": round(statistics.median(lat), 2) if lat else None, "p95": pct(0.95),
                      "max": round(lat[-1], 2) if lat else None},
        "latency_median_by_file_s": {k: round(statistics.median(v), 2) for k, v in by_file.items()},
        "server_memory_mb": {"idle": idle.get("VmRSS"), "peak_rss_during": during_peak,
                             "peak_hwm": settled.get("VmHWM"), f"rss_{args.settle:.0f}s_after": settled.get("VmRSS")},
        "memory_timeline_mb": [[t, m.get("VmRSS")] for t, m in samples[:: max(1, len(samples) // 40)]],
        "tracebacks_in_server_log": server_log.count("Traceback"),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0 if not report["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
