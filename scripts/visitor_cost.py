"""What one learner costs the server: `streamlit run` on 127.0.0.1 driven by headless Chromium through a lesson.

A lesson, per learner (a fresh browser context each):
  home      open the Home page
  quiz      answer 5 quiz cases (tumour or not, check, next)
  cases     open 3 cases of the case library in the scan check
  sample    pick a sample image on the Scan page
  upload    upload a 512 px slice (a different file for every learner)
  report    download the PDF report of that upload

For each action the server process's CPU seconds (utime + stime of all its threads, from /proc/<pid>/stat) are
read before and after, so the browsers' own CPU never counts; its peak resident memory is VmHWM. The first
learner meets an empty server (model loading, every cache cold); the others are what a class costs.

    python scripts/visitor_cost.py [--learners 4] [--json artifacts/visitor_cost.json]

With --class-size N --pace S it then runs a lesson at once: N learners in one browser, each doing one action
every S seconds (staggered), and reports the server's CPU use over the lesson (cores) and the action latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from brainscan.appserver import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402

ANSWER = re.compile("The model's answer: |The model thinks this scan most likely shows")  # this and older wording
SAMPLE = "lgg_glioma_flair.png"
QUIZ_CASES = 5
LIBRARY_CASES = 3
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


def peak_rss_mb(pid: int) -> float:
    m = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return round(int(m.group(1)) / 1024, 1) if m else float("nan")


def slice_png(seed: int) -> bytes:
    import cv2
    import numpy as np

    from brainscan.scans.synthetic import phantom

    img, _ = phantom(512, lesion=True, seed=1000 + seed)
    return cv2.imencode(".png", np.rint(img * 255).astype(np.uint8))[1].tobytes()


# --- one learner's actions (async Playwright: the class-at-once run shares them) -----------------------------

async def idle(page) -> None:
    await page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")


async def home(page, url: str, _: int) -> None:
    await page.goto(url)
    await page.get_by_role("heading", name="BrainScan", exact=True).wait_for()
    await idle(page)


async def quiz(page, url: str, _: int) -> None:
    await page.goto(f"{url}/quiz")
    for k in range(QUIZ_CASES):
        await page.get_by_text(f"Case {k + 1} of").first.wait_for()
        await idle(page)
        await page.get_by_text("No", exact=True).first.click()
        await idle(page)
        await page.get_by_role("button", name="Check my answer").click()
        await page.get_by_text("The model said:").first.wait_for()
        await idle(page)
        await page.get_by_role("button", name=re.compile("Next case|See the final score")).click()
        await idle(page)


async def cases(page, url: str, _: int) -> None:
    for k in range(LIBRARY_CASES):
        await page.goto(f"{url}/cases")
        await page.get_by_role("heading", name="Case library", exact=True).wait_for()
        await idle(page)
        await page.get_by_role("button", name="Open in the scan check").nth(k).click()
        await page.get_by_text(ANSWER).first.wait_for()
        await idle(page)


async def sample(page, url: str, _: int) -> None:
    await page.goto(f"{url}/scan")
    await page.get_by_role("heading", name="Scan check", exact=True).wait_for()
    await idle(page)
    await page.get_by_text(SAMPLE, exact=True).click()
    await page.get_by_text(ANSWER).first.wait_for()
    await idle(page)


async def upload(page, url: str, learner: int) -> None:
    await page.goto(f"{url}/scan")
    await page.get_by_role("heading", name="Scan check", exact=True).wait_for()
    await idle(page)
    await page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        [{"name": f"learner_{learner}.png", "mimeType": "image/png", "buffer": slice_png(learner)}])
    await page.get_by_text(ANSWER).first.wait_for()
    await idle(page)


async def report(page, url: str, _: int) -> None:
    async with page.expect_download() as download:
        await page.get_by_role("button", name=re.compile(r"Download the report \(PDF")).click()
    await (await download.value).path()


ACTIONS = [("home", home), ("quiz", quiz), ("cases", cases), ("sample", sample), ("upload", upload),
           ("report", report)]


# --- runs ---------------------------------------------------------------------------------------------------

async def one_by_one(browser, url: str, pid: int, learners: int) -> list[dict[str, dict[str, float]]]:
    out = []
    for learner in range(learners):
        context = await browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        page = await context.new_page()
        page.set_default_timeout(180_000)
        costs = {}
        for name, action in ACTIONS:
            c, t = cpu_seconds(pid), time.perf_counter()
            await action(page, url, learner)
            costs[name] = {"server_cpu_s": round(cpu_seconds(pid) - c, 3), "wall_s": round(time.perf_counter() - t, 3)}
        await context.close()
        out.append(costs)
    return out


async def lesson(browser, url: str, pid: int, size: int, pace: float) -> dict:
    """size learners at once, each doing the lesson's actions one every pace seconds, starts staggered."""
    latencies: list[float] = []
    failures: list[str] = []

    async def learner(k: int) -> None:
        context = await browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        page = await context.new_page()
        page.set_default_timeout(300_000)
        await asyncio.sleep(pace * k / size)
        for name, action in ACTIONS:
            start = time.perf_counter()
            try:
                await action(page, url, 100 + k)
                latencies.append(time.perf_counter() - start)
            except Exception as err:  # noqa: BLE001 - a failed action is counted and reported, the lesson goes on
                failures.append(f"learner {k} {name}: {type(err).__name__}")
            await asyncio.sleep(max(0.0, pace - (time.perf_counter() - start)))
        await context.close()

    c, t = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(learner(k) for k in range(size)))
    wall = time.perf_counter() - t
    cpu = cpu_seconds(pid) - c
    lat = sorted(latencies)
    return {"learners": size, "pace_s": pace, "wall_s": round(wall, 1), "server_cpu_s": round(cpu, 1),
            "server_cores_used": round(cpu / wall, 3), "actions": len(lat), "failed_actions": failures,
            "latency_median_s": round(statistics.median(lat), 2) if lat else None,
            "latency_p95_s": round(lat[int(0.95 * (len(lat) - 1))], 2) if lat else None}


def summarise(runs: list[dict[str, dict[str, float]]]) -> dict:
    warm = runs[1:] or runs
    per_action = {name: round(statistics.median(r[name]["server_cpu_s"] for r in warm), 3) for name, _ in ACTIONS}
    per_learner = [round(sum(a["server_cpu_s"] for a in r.values()), 2) for r in runs]
    lesson_cpu = statistics.median(per_learner[1:] or per_learner)
    n_actions = len(ACTIONS)
    return {"server_cpu_s_per_learner": per_learner, "server_cpu_s_per_action_warm": per_action,
            "server_cpu_s_per_lesson_warm": round(lesson_cpu, 2),
            # one core, one action per learner every 20 s: the lesson's actions take n_actions * 20 s of a learner
            "learners_per_core_at_one_action_per_20s": round(n_actions * 20 / lesson_cpu, 1)}


async def main_async(args) -> dict:
    from playwright.async_api import async_playwright

    env = {"BRAINSCAN_RUNS_DIR": str(Path(args.runs_dir).resolve())}
    if args.model:
        env["BRAINSCAN_MODEL"] = str(Path(args.model).resolve())
    proc, url, log = start_server(env)
    result: dict = {"machine": f"{os.cpu_count()} CPU cores", "model": args.model or "models/default"}
    try:
        wait_healthy(url, proc, 120, poll=0.05)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            runs = await one_by_one(browser, url, proc.pid, args.learners)
            result["one_by_one"] = runs
            result.update(summarise(runs))
            if args.class_size:
                result["lesson"] = await lesson(browser, url, proc.pid, args.class_size, args.pace)
            await browser.close()
        result["server_peak_rss_mb"] = peak_rss_mb(proc.pid)
    finally:
        stop_server(proc, log)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--learners", type=int, default=4, help="learners one after another (the first is cold)")
    ap.add_argument("--class-size", type=int, default=0, help="then this many learners at once (0: skip)")
    ap.add_argument("--pace", type=float, default=20.0, help="seconds between one learner's actions in the lesson")
    ap.add_argument("--model", help="a model folder (default: the app's, models/default)")
    ap.add_argument("--runs-dir", default="artifacts/visitor-cost-runs", help="the server's runs folder")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()
    Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
