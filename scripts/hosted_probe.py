"""Hosted mode probed the way a hostile visitor would (issue 23, round two), against `streamlit run` with
BRAINSCAN_HOSTED=1 on 127.0.0.1 and several Chromium browser contexts (each context is one visitor: its own
cookies; its pages are that visitor's tabs).

    python scripts/hosted_probe.py [--out probe.json] [--grace 45] [--epoch-seconds 10] [--keep]

Runs the tree the script sits in (copy it into a worktree of an older commit to measure that commit). Trains with
tests/fake_brainscan_trainer.py (the server is started through a small wrapper that sets
brainscan.runs.process.TRAINER), so no TensorFlow is needed and runs last epochs x --epoch-seconds. Samples the
server's resident memory from /proc every half second. Prints one row per measurement and writes them as JSON.

Rows (the issue's numbering):
  2a  one visitor, nine tabs, Start in each: runs running / waiting / refused, and the time it took
  2b  a second visitor then: what it is told
  2c  a visitor's waiting run, from a second tab of the same browser: offered to leave the queue? left?
  2d  all tabs of a visitor closed: are its training and waiting runs ended, and when
  2e  server restarted (its process group; trainers and keeper live on) with a run waiting and no page open: when
      does it start after the slot frees? and 2f the same with the keeper process killed too
  3a  nine 28 MB zips that fail the dataset check, from one tab: the runs folder before and after
  3b  one visitor far over its share (9 x 260 MB) next to others' older runs and uploads: the next Train page
      load's janitor
  3c  `python -m brainscan janitor` without BRAINSCAN_HOSTED on a finished run and an upload aged 7 hours
  4a  a zip entry name over 255 bytes; 4b `yes/x` beside `yes/x/y.png`: the error text
  4c  a run's progress lines and its log panel: absolute paths on screen
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from brainscan.appserver import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

FAKE_TRAINER = ROOT / "tests" / "fake_brainscan_trainer.py"
WRAPPER = ("import json, sys; import brainscan.runs.process as p; p.TRAINER = json.loads(sys.argv.pop(1)); "
           "from streamlit.web.cli import main; sys.argv[0] = 'streamlit'; main()")
REPLY = re.compile(r"Started run \S+|Run \S+ is number \d+ in the queue|You already have a run[^\n]*|"
                   r"The training queue is full[^\n]*|not available here[^\n]*")
ROWS: list[dict] = []


def row(key: str, what: str, value, **extra) -> None:
    ROWS.append({"row": key, "what": what, "value": value, **extra})
    print(f"{key:3} {what}: {value}" + (f"  {extra}" if extra else ""), flush=True)


# --- the server and its memory ---------------------------------------------------------------------

class Server:
    def __init__(self, env: dict[str, str], log: Path, trainer: list[str]):
        self.env, self.log_path, self.trainer = env, log, trainer
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-c", WRAPPER, json.dumps(self.trainer), "run", "streamlit_app.py",
               "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(self.port),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
        log = open(self.log_path, "a")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("streamlit exited:\n" + self.log_path.read_text()[-3000:])
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            time.sleep(0.3)
        raise TimeoutError("streamlit did not become healthy")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class Memory(threading.Thread):
    """Resident memory of the current server process every half second, peak per phase."""

    def __init__(self, server: Server, runs_dir: Path):
        super().__init__(daemon=True)
        self.server, self.phase, self.peaks, self.done = server, "start", {}, threading.Event()
        self.runs_dir, self.disk_peak, self.watch_disk = runs_dir, 0.0, False

    def run(self) -> None:
        while not self.done.wait(0.5):
            if self.watch_disk:
                self.disk_peak = max(self.disk_peak, folder_mb(self.runs_dir))
            proc = self.server.proc
            if proc is None:
                continue
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        mb = int(line.split()[1]) / 1024
                        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), mb)


# --- the runs folder -------------------------------------------------------------------------------

def run_states(runs_dir: Path) -> dict[str, dict]:
    out = {}
    if runs_dir.is_dir():
        for d in runs_dir.iterdir():
            if d.is_dir() and not d.name.startswith(".") and d.name != "uploads":
                with contextlib.suppress(OSError, ValueError):
                    out[d.name] = json.loads((d / "status.json").read_text())
    return out


def folder_mb(path: Path) -> float:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return round(total / 2**20, 1)


def stop_live_runs(runs_dir: Path) -> None:
    from brainscan import runs

    for name, st in run_states(runs_dir).items():
        if st.get("state") in ("running", "queued"):
            with contextlib.suppress(Exception):
                runs.stop_run(runs_dir / name, timeout=10)


def kill_keepers(runs_dir: Path) -> int:
    n = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "brainscan.runs.keeper" in cmd and str(runs_dir) in cmd:
                os.kill(int(proc.name), signal.SIGKILL)
                n += 1
    return n


def wait_state(runs_dir: Path, name: str, states: tuple[str, ...], timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if run_states(runs_dir).get(name, {}).get("state") in states:
            return time.monotonic() - t0
        time.sleep(0.5)
    return None


# --- zips ------------------------------------------------------------------------------------------

def heavy_zip(path: Path, mb: int = 260) -> Path:
    """A zip of about mb/9.3 MB that unpacks to mb MB of files in one plain folder (not a dataset)."""
    import numpy as np

    if path.exists():
        return path
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for k in range(mb // 5):
            n = 5 * 2**20
            data = np.zeros(n, np.uint8)
            mask = rng.random(n) < 0.04
            data[mask] = rng.integers(1, 256, int(mask.sum()))
            zf.writestr(f"notes/part-{k:03d}.bin", data.tobytes())
    return path


def small_zip(path: Path, names: list[str]) -> Path:
    import cv2
    import numpy as np

    from brainscan.scans.synthetic import phantom

    with zipfile.ZipFile(path, "w") as zf:
        for i, name in enumerate(names):
            png = cv2.imencode(".png", np.rint(phantom(64, seed=i)[0] * 255).astype(np.uint8))[1].tobytes()
            zf.writestr(name, png if name.endswith(".png") else b"x")
    return path


# --- the browser -----------------------------------------------------------------------------------

def main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text(timeout=60_000)


def open_train(ctx, url: str):
    page = ctx.new_page()
    page.set_default_timeout(120_000)
    page.goto(url + "/train")
    page.get_by_role("heading", name="1. Dataset").wait_for()
    return page


def wait_dataset(page) -> None:
    page.get_by_text("Images per class").first.wait_for(timeout=180_000)


def click_start(page, epochs: int) -> str:
    before = main_text(page)
    box = page.get_by_role("spinbutton", name="Epochs", exact=True)
    box.fill(str(epochs))
    page.get_by_role("button", name="Start training").click()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = main_text(page)
        found = [m.group(0) for m in REPLY.finditer(text)]
        new = [f for f in found if f not in before or "already" in f or "full" in f]
        if new:
            return new[0]
        time.sleep(0.5)
    return "(no answer in 90 s)"


def script_state(page) -> str:
    return page.get_by_test_id("stApp").get_attribute("data-test-script-state", timeout=30_000) or ""


def upload(page, path: Path, wait_for: re.Pattern, timeout: float = 180) -> str:
    """Upload path, wait for the rerun it causes to end, and return the first alert matching wait_for."""
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for(timeout=120_000)  # the uploader lists the file
    t0 = time.monotonic()
    while script_state(page) != "running" and time.monotonic() - t0 < 3:
        time.sleep(0.05)
    quiet = 0
    while quiet < 3 and time.monotonic() - t0 < timeout:  # 1.5 s without a run: the upload's run is over
        quiet = quiet + 1 if script_state(page) != "running" else 0
        time.sleep(0.5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alerts = page.get_by_test_id("stAlert")
        texts = [alerts.nth(i).inner_text() for i in range(alerts.count())]
        hit = [t for t in texts if wait_for.search(t)]
        if hit:
            return hit[0]
        time.sleep(0.5)
    return "(no answer)"


def server_paths(text: str, tmp: Path) -> list[str]:
    """Absolute server paths in text: under the probe's folder, the app's folder, Python's, /tmp, /root, /home."""
    marks = {str(tmp), str(ROOT), sys.prefix, sys.base_prefix, "/runs/uploads/", "/tmp/", "/root/", "/home/",
             "site-packages"}
    found = []
    for line in text.splitlines():
        if any(m in line for m in marks):
            found.append(line.strip()[:160])
    return found


# --- the probe -------------------------------------------------------------------------------------

def probe(tmp: Path, grace: float, epoch_s: float) -> None:  # noqa: PLR0915 - one scenario after another
    from playwright.sync_api import sync_playwright

    from brainscan.scans.synthetic import write_dataset

    runs_dir = tmp / "runs"
    phantoms = write_dataset(tmp / "phantoms", per_class=10, size=64)
    env = {**os.environ, "BRAINSCAN_HOSTED": "1", "BRAINSCAN_RUNS_DIR": str(runs_dir),
           "BRAINSCAN_MODELS_DIR": str(tmp / "models"), "BRAINSCAN_MODEL": str(ROOT / "models" / "default"),
           "BRAINSCAN_DATASETS": f"Phantoms={phantoms}", "BRAINSCAN_VISITOR_GRACE_S": str(grace),
           "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("BRAINSCAN_OPERATOR_KEY", None)
    trainer = [sys.executable, str(FAKE_TRAINER), f"--epoch-seconds={epoch_s}", "train"]
    os.environ.update({k: env[k] for k in ("BRAINSCAN_RUNS_DIR", "BRAINSCAN_MODELS_DIR")})
    server = Server(env, tmp / "server.log", trainer)
    mem = Memory(server, runs_dir)
    mem.start()
    server.start()
    row("-", "tree", str(ROOT), commit=subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                                        capture_output=True, text=True).stdout.strip())
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

    def visitor():
        return browser.new_context(viewport={"width": 1280, "height": 1000})

    try:
        # 2c first: a waiting run of visitor B, seen from B's second tab
        mem.phase = "2: queue"
        a, b = visitor(), visitor()
        a1 = open_train(a, server.url)
        wait_dataset(a1)
        known = set(run_states(runs_dir))
        first = click_start(a1, 30)
        a_runs = set(run_states(runs_dir)) - known
        b1 = open_train(b, server.url)
        wait_dataset(b1)
        known = set(run_states(runs_dir))
        b_reply = click_start(b1, 30)
        b_runs = set(run_states(runs_dir)) - known
        b2 = open_train(b, server.url)
        wait_dataset(b2)
        time.sleep(3)
        leave = b2.get_by_role("button", name="Leave the queue")
        offered = leave.count() > 0
        if offered:
            leave.first.click()
            time.sleep(4)
        b_state = {n: run_states(runs_dir)[n].get("state") for n in b_runs}
        row("2c", "B's waiting run from B's second tab", "offered and left" if offered and
            all(s == "stopped" for s in b_state.values()) else ("offered" if offered else "not offered"),
            first_tab_reply=b_reply, states=b_state)
        stop_live_runs_of(runs_dir, b_runs)
        b.close()

        # 2a: eight more tabs of visitor A, Start in each
        tabs = [a1] + [open_train(a, server.url) for _ in range(8)]
        for t in tabs[1:]:
            wait_dataset(t)
        t0 = time.monotonic()
        replies = [first]
        for t in tabs[1:]:
            known = set(run_states(runs_dir))
            replies.append(click_start(t, 30))
            a_runs |= set(run_states(runs_dir)) - known
        took = time.monotonic() - t0
        states = [run_states(runs_dir)[n].get("state") for n in a_runs]
        row("2a", "one visitor, nine tabs", f"{states.count('running')} running, {states.count('queued')} waiting, "
            f"{9 - len(a_runs)} refused", seconds=round(took, 1),
            refusal=next((r for r in replies if "already" in r or "full" in r), ""))

        # 2b: a second visitor
        c = visitor()
        c1 = open_train(c, server.url)
        wait_dataset(c1)
        known = set(run_states(runs_dir))
        c_reply = click_start(c1, 30)
        c_runs = set(run_states(runs_dir)) - known
        row("2b", "a second visitor", c_reply)

        # 2d: every tab of A closed
        mem.phase = "2d: vanished"
        a.close()
        t_close = time.monotonic()
        live = [n for n in a_runs if run_states(runs_dir)[n].get("state") in ("running", "queued")]
        ended_at = None
        while time.monotonic() - t_close < grace + 45:
            now_live = [n for n in live if run_states(runs_dir)[n].get("state") in ("running", "queued")]
            if not now_live:
                ended_at = time.monotonic() - t_close
                break
            time.sleep(1)
        left = [n for n in live if run_states(runs_dir)[n].get("state") in ("running", "queued")]
        row("2d", f"A's {len(live)} live runs after its tabs closed (grace {grace:.0f} s)",
            f"all ended after {ended_at:.0f} s" if ended_at is not None else
            f"{len(left)} still live {grace + 45:.0f} s later", messages=sorted({run_states(runs_dir)[n].get(
                "message", "") for n in live})[:2])
        stop_live_runs_of(runs_dir, a_runs)

        # 2e/2f: restart with a run waiting and nobody on any page
        for key, kill in (("2e", False), ("2f", True)):
            mem.phase = f"{key}: restart"
            stop_live_runs(runs_dir)
            c.close() if c is not None else None
            c = visitor()
            c1 = open_train(c, server.url)
            wait_dataset(c1)
            known = set(run_states(runs_dir))
            click_start(c1, 30)
            c_runs = set(run_states(runs_dir)) - known
            d = visitor()
            d1 = open_train(d, server.url)
            wait_dataset(d1)
            known = set(run_states(runs_dir))
            click_start(d1, 30)
            d_runs = set(run_states(runs_dir)) - known
            time.sleep(6)  # a tick of the server's queue thread (it starts the keeper)
            c.close()
            d.close()
            c = None
            server.stop()
            killed = kill_keepers(runs_dir) if kill else 0
            server.start()
            for n in c_runs:  # the slot frees
                from brainscan import runs as runs_mod

                runs_mod.stop_run(runs_dir / n, timeout=10)
            d_name = next(iter(d_runs), "")
            waited = wait_state(runs_dir, d_name, ("running", "finished", "stopped"), 25)
            state = run_states(runs_dir).get(d_name, {}).get("state")
            if waited is not None:
                row(key, "waiting run after a restart, no page open" + (" (keeper killed too)" if kill else ""),
                    f"{state} {waited:.1f} s after the slot freed", keepers_killed=killed)
            else:
                e = visitor()
                e.new_page().goto(server.url)
                after_view = wait_state(runs_dir, d_name, ("running", "finished", "stopped"), 60)
                row(key, "waiting run after a restart, no page open" + (" (keeper killed too)" if kill else ""),
                    "still waiting 25 s after the slot freed; " + (f"{run_states(runs_dir)[d_name].get('state')} "
                                                                   f"{after_view:.1f} s after a page view"
                                                                   if after_view is not None else
                                                                   "not started 60 s after a page view"),
                    keepers_killed=killed)
                e.close()
            stop_live_runs(runs_dir)

        # 3a: nine refused 28 MB zips from one tab
        mem.phase = "3a: uploads"
        z = heavy_zip(tmp.parent / "h23-heavy.zip")
        e = visitor()
        e1 = open_train(e, server.url)
        e1.get_by_text("Upload a zip").click()
        e1.locator("input[type=file]").wait_for(state="attached")
        before_mb = folder_mb(runs_dir)
        mem.watch_disk = True
        t0 = time.monotonic()
        replies = []
        for k in range(9):
            copy = tmp / f"notes-{k}.zip"
            with contextlib.suppress(FileExistsError):
                os.link(z, copy)
            replies.append(upload(e1, copy, re.compile(r"dataset|zip|MB|folder", re.I)))
        took = time.monotonic() - t0
        mem.watch_disk = False
        row("3a", f"nine {z.stat().st_size / 2**20:.0f} MB zips failing the dataset check, one tab",
            f"runs folder {before_mb} MB -> {folder_mb(runs_dir)} MB", seconds=round(took, 1),
            peak_mb=mem.disk_peak, reply=replies[-1][:160],
            server_paths=server_paths("\n".join(replies), tmp)[:2])
        e.close()
        last_sweep = time.monotonic()

        # 3b: one visitor far over its share next to others' older runs and uploads
        mem.phase = "3b: janitor"
        for p in (runs_dir / "uploads").glob("*"):  # 3a's leftovers (the situation, made the same below)
            shutil.rmtree(p, ignore_errors=True)
        now = time.time()
        others = seed_others(runs_dir, now)
        heavy = runs_dir / "uploads" / ("e" * 16)
        for k in range(9):
            item = heavy / f"2025010{k}-000000-notes"
            item.mkdir(parents=True)
            with open(item / "part.bin", "wb") as fh:
                fh.truncate(260 * 2**20)  # sparse: counted at its size, as the janitor counts
            os.utime(item, (now - 600 + k, now - 600 + k))
        runs_before = [n for n in run_states(runs_dir)]
        total_before = folder_mb(runs_dir)
        time.sleep(max(0.0, 65 - (time.monotonic() - last_sweep)))
        g = visitor()
        g1 = open_train(g, server.url)
        wait_dataset(g1)
        time.sleep(3)
        kept_others = [p.name for p in others if p.exists()]
        runs_after = [n for n in run_states(runs_dir)]
        row("3b", "next Train page load with one visitor at 2,340 MB", f"runs folder {total_before} MB -> "
            f"{folder_mb(runs_dir)} MB", others_kept=f"{len(kept_others)} of {len(others)}",
            probe_runs_kept=f"{len(set(runs_after) & set(runs_before))} of {len(runs_before)}",
            heavy_uploads_left=len(list(heavy.glob("*"))) if heavy.exists() else 0)
        g.close()

        # 3c: the janitor command without BRAINSCAN_HOSTED
        mem.phase = "3c: janitor command"
        jdir = tmp / "janitor-runs"
        aged = seed_others(jdir, time.time(), age_s=7 * 3600)
        jenv = {k: v for k, v in env.items() if k != "BRAINSCAN_HOSTED"}
        jenv.update(BRAINSCAN_RUNS_DIR=str(jdir), BRAINSCAN_MODELS_DIR=str(tmp / "janitor-models"))
        out = subprocess.run([sys.executable, "-m", "brainscan", "janitor"], cwd=ROOT, env=jenv, capture_output=True,
                             text=True, timeout=120)
        row("3c", "`python -m brainscan janitor`, no BRAINSCAN_HOSTED, entries aged 7 h",
            f"{sum(not p.exists() for p in aged)} of {len(aged)} removed", exit=out.returncode)

        # 4a/4b: zips whose names trip the file system
        mem.phase = "4: paths"
        h = visitor()
        h1 = open_train(h, server.url)
        h1.get_by_text("Upload a zip").click()
        h1.locator("input[type=file]").wait_for(state="attached")
        long_zip = small_zip(tmp / "long.zip", ["yes/" + "a" * 300 + ".png", "no/b.png"])
        text = upload(h1, long_zip, re.compile(r"zip|name|extract", re.I))
        row("4a", "zip entry name over 255 bytes", text[:200], server_paths=server_paths(text, tmp))
        clash_zip = small_zip(tmp / "clash.zip", ["yes/x", "yes/x/y.png", "no/a.png"])
        h1.close()
        h1 = open_train(h, server.url)
        h1.get_by_text("Upload a zip").click()
        h1.locator("input[type=file]").wait_for(state="attached")
        text = upload(h1, clash_zip, re.compile(r"zip|folder|extract", re.I))
        row("4b", "`yes/x` beside `yes/x/y.png`", text[:200], server_paths=server_paths(text, tmp))
        h.close()

        # 4c: a run's progress and log panel
        stop_live_runs(runs_dir)
        i = visitor()
        i1 = open_train(i, server.url)
        wait_dataset(i1)
        click_start(i1, 2)
        i1.get_by_text(re.compile(r"epoch 1/2")).first.wait_for(timeout=120_000)
        progress_text = main_text(i1)
        i1.get_by_text(re.compile(r"Run \S+ finished")).first.wait_for(timeout=120_000)
        i1.get_by_text("Log (last lines)").first.click()
        time.sleep(1.5)
        log_text = main_text(i1)
        found = server_paths(progress_text + "\n" + log_text, tmp)
        row("4c", "a run's progress lines and log panel: lines naming a server path", len(found),
            examples=found[:3])
        i.close()
    finally:
        mem.done.set()
        browser.close()
        pw.stop()
        stop_live_runs(runs_dir)
        server.stop()
        kill_keepers(runs_dir)
    row("-", "server RSS peak per phase (MB)", {k: round(v) for k, v in mem.peaks.items()})


def stop_live_runs_of(runs_dir: Path, names: set[str]) -> None:
    from brainscan import runs

    for n in names:
        if run_states(runs_dir).get(n, {}).get("state") in ("running", "queued"):
            with contextlib.suppress(Exception):
                runs.stop_run(runs_dir / n, timeout=10)


def seed_others(runs_dir: Path, now: float, age_s: float = 3600) -> list[Path]:
    """Another visitor's finished run and upload, age_s old (5 MB each)."""
    owner = "f" * 32
    run = runs_dir / "20200101-000000-someone-elses-run"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished", "owner": owner, "started": now - age_s - 60,
                                                 "ended": now - age_s}))
    (run / "config.json").write_text(json.dumps({"arch": "compact", "data": "x"}))
    (run / "model.keras").write_bytes(b"m" * 5 * 2**20)
    (run / "card.json").write_text("{}")
    up = runs_dir / "uploads" / owner[:16] / "20200101-000000-their-data"
    (up / "yes").mkdir(parents=True)
    (up / "yes" / "a.png").write_bytes(b"p" * 5 * 2**20)
    for p in (up / "yes" / "a.png", up / "yes", up):
        os.utime(p, (now - age_s, now - age_s))
    return [run, up]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="", help="write the rows as JSON here")
    p.add_argument("--grace", type=float, default=60.0, help="BRAINSCAN_VISITOR_GRACE_S for the server (60)")
    p.add_argument("--epoch-seconds", type=float, default=10.0, help="the fake trainer's epoch (10 s)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hosted-probe-"))
    try:
        probe(tmp, args.grace, args.epoch_seconds)
    finally:
        if args.out:
            Path(args.out).write_text(json.dumps(ROWS, indent=1))
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
