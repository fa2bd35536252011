"""Peak memory of the scan path and the dataset summary for hostile but accepted (or refused) inputs.

Each case runs in a fresh Python process that loads the model the app uses and checks one ordinary scan first
(the baseline); the peak resident memory (VmHWM from /proc/self/status) is recorded after the baseline and
after the case. The scan cases do what the Scan page does with an upload: decode, prepare, predict, Grad-CAM,
overlay and PNG for the browser. The summary cases hash a folder of images the way the Train page's dataset
summary does (4 threads). Prints one JSON object; --out also writes it to a file.

    python scripts/bench_memory.py [--cases rgba_6300,gray_40mp] [--out artifacts/bench_memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "sample_images" / "lgg_glioma_flair.png"


def _png(path: Path, mode: str, size: tuple[int, int], fill=0) -> None:
    from PIL import Image, ImageDraw

    img = Image.new(mode, size, fill)
    if mode in ("L", "RGB", "RGBA", "I;16") and min(size) > 64:
        draw = ImageDraw.Draw(img)
        w, h = size
        colour = {"L": 200, "RGB": (200, 180, 160), "RGBA": (200, 180, 160, 255), "I;16": 50000}[mode]
        draw.ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=colour)
    img.save(path)


def make_inputs(folder: Path, wanted: set[str] | None = None) -> dict[str, dict]:
    """The files of the wanted cases (all by default; written once, the cases only read them)."""
    from PIL import Image

    scans = folder / "scans"
    scans.mkdir()
    cases: dict[str, dict] = {"baseline": {"kind": "scan", "file": str(SAMPLE)}}
    specs = {
        "gray_2048": ("L", (2048, 2048), "png"),  # an ordinary large slice: what the steps after decoding cost
        "rgba_6300": ("RGBA", (6300, 6300), "png"),  # the 154 KB RGBA PNG, under the pixel limit
        "gray_40mp": ("L", (6320, 6320), "png"),
        "rgb_jpeg_39mp": ("RGB", (7200, 5400), "jpg"),
        "i16_6000": ("I;16", (6000, 6000), "png"),
        "palette_6000": ("P", (6000, 6000), "gif"),
        "over_limit_13000": ("L", (13000, 13000), "png"),  # refused: more than 40 MP
    }
    for name, (mode, size, ext) in specs.items():
        if wanted and name not in wanted:
            continue
        path = scans / f"{name}.{ext}"
        if ext == "jpg":
            img = Image.new(mode, size, (40, 40, 40))
            img.save(path, quality=80)
        else:
            _png(path, mode, size)
        cases[name] = {"kind": "scan", "file": str(path)}
    # The 5.3 MB zip: eight zero-filled 13000x13000 PNGs (over the pixel limit), and eight RGBA 6300x6300.
    for name, mode, size, n in (("summary_8x13000", "L", (13000, 13000), 8), ("summary_8x_rgba_6300", "RGBA",
                                                                                (6300, 6300), 8)):
        if wanted and name not in wanted:
            continue
        data = folder / name
        for cls in ("yes", "no"):
            (data / cls).mkdir(parents=True)
        src = data / "yes" / "0.png"
        _png(src, mode, size)
        for i in range(1, n):
            os.link(src, data / ("yes" if i < n // 2 else "no") / f"{i}.png")
        for cls in ("yes", "no"):  # and four ordinary slices per class, so that a summary can be made
            for i in range(4):
                _png(data / cls / f"small_{i}.png", "L", (256, 256), fill=10 * i)
        cases[name] = {"kind": "summary", "folder": str(data)}
    return cases


CHILD = r"""
import json, re, sys, time
from pathlib import Path

def hwm():
    text = Path("/proc/self/status").read_text()
    return {k: round(int(re.search(rf"^{k}:\s+(\d+) kB", text, re.M).group(1)) / 1024, 1) for k in ("VmHWM", "VmRSS")}

case = json.loads(sys.argv[1])
from brainscan.check import check_bytes, load_checker
from brainscan.cam.overlay import gradcam_overlay, to_png
from brainscan.scans.io import to_uint8
model = load_checker(case.get("model"))

def scan(path):
    data = Path(path).read_bytes()
    r = check_bytes(model, data, Path(path).name, cam_method="gradcam")
    to_png(gradcam_overlay(r.scan.pixels, r.heatmap.original, 0.4))
    to_png(to_uint8(r.scan.pixels))
    return r

scan(case["baseline"])
base = hwm()
t = time.perf_counter()
out = {"baseline_peak_mb": base["VmHWM"]}
try:
    if case["kind"] == "scan":
        r = scan(case["file"])
        out["result"] = f"answered ({r.scan.pixels.shape[1]}x{r.scan.pixels.shape[0]} after decoding)"
    else:
        from brainscan.scans import summary
        s = summary.dataset_summary(case["folder"])
        out["result"] = f"summary: {s['n_images']} images, {len(s.get('unreadable', []))} unreadable"
except Exception as err:
    out["result"] = f"refused: {type(err).__name__}: {err}"
out["seconds"] = round(time.perf_counter() - t, 2)
end = hwm()
out["peak_mb"] = end["VmHWM"]
out["rss_after_mb"] = end["VmRSS"]
out["peak_over_baseline_mb"] = round(end["VmHWM"] - base["VmHWM"], 1)
out["peak_ratio"] = round(end["VmHWM"] / base["VmHWM"], 2)
print("RESULT " + json.dumps(out))
"""


def run_case(name: str, case: dict, model: str | None, timeout: float = 600) -> dict:
    spec = {**case, "baseline": str(SAMPLE), "model": model}
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        return {"case": name, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"}
    return {"case": name, **json.loads(line[7:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--model", default=None, help="model folder (default: what the app uses)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        t = time.perf_counter()
        wanted = [c for c in args.cases.split(",") if c]
        cases = make_inputs(Path(tmp), set(wanted))
        wanted = wanted or list(cases)
        results = [run_case(name, cases[name], args.model) for name in wanted]
    report = {"command": "python scripts/bench_memory.py " + " ".join(argv or sys.argv[1:]),
              "machine": f"{os.cpu_count()} CPU cores", "seconds": round(time.perf_counter() - t, 1),
              "cases": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
