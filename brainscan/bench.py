"""`python -m brainscan bench`: time one scan check per stage, against VGG19 predict in the same process.

Reported as medians of repeated runs and as a ratio (speedup_vs_vgg19), never as absolute targets.
"""

from __future__ import annotations

import io
import platform
import statistics
import time

import cv2
import numpy as np


def _median_ms(fn, repeats: int, before=None) -> float:
    """Median wall time of fn over repeats, after one warm-up call; before() runs untimed ahead of each call."""
    fn()  # warm-up: graph tracing and caches are not what a user waits for on the second scan
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def sample_png(size: int = 256) -> bytes:
    from brainscan.scans.synthetic import phantom

    img, _ = phantom(size, lesion=True, seed=7)
    ok, buf = cv2.imencode(".png", np.rint(img * 255).astype(np.uint8))
    return buf.tobytes()


def run_bench(model_path: str | None = None, repeats: int = 7, cam_method: str = "gradcam") -> dict:
    import keras

    from brainscan.cam.heatmap import heatmap
    from brainscan.check import check_bytes, check_scan
    from brainscan.runtime.inference import fresh_input, load_model, predict
    from brainscan.scans.io import load_scan
    from brainscan.scans.preprocess import prepare

    model = load_model(model_path)
    data = sample_png()
    scan = load_scan(data, "bench.png")
    prepared = prepare(scan.pixels, model.size)
    pred = predict(model, prepared.input)
    stages = {
        "decode": lambda: load_scan(data, "bench.png"),
        "preprocess": lambda: prepare(scan.pixels, model.size),
        "predict": lambda: predict(model, prepared.input),
        "gradcam": lambda: heatmap(model, prepared, pred.class_index, cam_method),
        "total": lambda: check_scan(model, load_scan(data, "bench.png"), cam_method, tta=False),
        "with_uncertainty": lambda: check_bytes(model, data, "bench.png", cam_method=cam_method),
    }
    # Every stage but the heatmap starts from a scan the network has not just seen; the heatmap reuses the
    # prediction's forward pass, as it does in the app.
    result = {f"{k}_ms": round(_median_ms(fn, repeats, None if k == "gradcam" else fresh_input(model)), 2)
              for k, fn in stages.items()}

    import tensorflow as tf

    vgg = keras.applications.VGG19(weights=None, input_shape=(224, 224, 3))
    vgg_predict = tf.function(lambda t: vgg(t, training=False))  # VGG19's fastest path, traced like ours
    x = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    result["vgg19_predict_ms"] = round(_median_ms(lambda: vgg_predict(x).numpy(), repeats), 2)
    result["speedup_vs_vgg19"] = round(result["vgg19_predict_ms"] / result["total_ms"], 2)
    result["speedup_vs_vgg19_with_uncertainty"] = round(result["vgg19_predict_ms"] / result["with_uncertainty_ms"], 2)
    result.update(model=model.name, runtime=model.backend, input_size=model.size, cam_method=cam_method,
                  repeats=repeats,
                  machine=f"{platform.machine()} {platform.processor() or ''}".strip(), cpu_count=_cpus())
    return result


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


def format_report(r: dict) -> str:
    buf = io.StringIO()
    print(f"One scan check with {r['model']} ({r['input_size']}px, {r['cam_method']}, {r['runtime']} runtime), "
          f"median of {r['repeats']} runs on {r['cpu_count']} CPU cores:", file=buf)
    names = {"total": "total (decode to heatmap)", "with_uncertainty": "total + test-time-augmentation uncertainty"}
    for k in ("decode", "preprocess", "predict", "gradcam", "total", "with_uncertainty"):
        print(f"  {names.get(k, k):<42} {r[f'{k}_ms']:9.1f} ms", file=buf)
    print(f"  VGG19 predict alone (224x224x3, weights=None): {r['vgg19_predict_ms']:.1f} ms", file=buf)
    print(f"  speedup vs VGG19: {r['speedup_vs_vgg19']:.2f}x decode to heatmap (target >= 10x), "
          f"{r['speedup_vs_vgg19_with_uncertainty']:.2f}x with the uncertainty", file=buf)
    return buf.getvalue().rstrip()
