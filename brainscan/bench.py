"""`python -m brainscan bench`: time one scan check per stage, against VGG19 predict in the same process; and one
volume's slices predicted in batches (brainscan.runtime.volume.check_slices) against the same slices one call each.

Reported as medians of repeated runs and as ratios (speedup_vs_vgg19, volume_batch_speedup), never as absolute
targets.
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

    result.update(bench_volume(model, repeats))

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


VOLUME_SLICES, VOLUME_SIDE = 40, 256


def bench_volume(model, repeats: int = 7) -> dict:
    """A 40-slice 256 x 256 phantom volume: every slice prepared and predicted in batches (the volume path), against
    the same slices prepared and predicted one call each; the slices' preparation is in both."""
    from brainscan.runtime.inference import fresh_input, predict, run_model
    from brainscan.runtime.volume import check_slices
    from brainscan.scans.preprocess import prepare
    from brainscan.scans.synthetic import phantom_volume
    from brainscan.scans.volume import from_slices, head_slices

    volume = from_slices(list(phantom_volume(VOLUME_SLICES, VOLUME_SIDE, lesion=(20, 80, 160), seed=3)),
                         name="bench", slice_mm=4.0)
    keep, _ = head_slices(volume)

    def one_by_one() -> None:
        for k in keep:
            predict(model, prepare(volume.slice_pixels(k), model.size, keep_steps=False).input)

    inputs = np.stack([prepare(volume.slice_pixels(k), model.size, keep_steps=False).input for k in keep])
    batched = _median_ms(lambda: check_slices(model, volume), repeats, fresh_input(model))
    single = _median_ms(one_by_one, repeats, fresh_input(model))
    net_batched = _median_ms(lambda: run_model(model, inputs), repeats, fresh_input(model))
    net_single = _median_ms(lambda: [predict(model, x) for x in inputs], repeats, fresh_input(model))
    return {"volume_slices": len(keep), "volume_batched_ms": round(batched, 2),
            "volume_slice_by_slice_ms": round(single, 2), "volume_batch_speedup": round(single / batched, 2),
            "volume_network_batched_ms": round(net_batched, 2),
            "volume_network_slice_by_slice_ms": round(net_single, 2),
            "volume_network_batch_speedup": round(net_single / net_batched, 2)}


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
    if "volume_batched_ms" in r:
        print(f"  a volume's {r['volume_slices']} slices ({VOLUME_SIDE}x{VOLUME_SIDE}), prepared and predicted: "
              f"{r['volume_batched_ms']:.1f} ms as the volume path does it (batches, two preparing threads), "
              f"{r['volume_slice_by_slice_ms']:.1f} ms one call each: {r['volume_batch_speedup']:.2f}x; the network "
              f"alone {r['volume_network_batched_ms']:.1f} ms batched, {r['volume_network_slice_by_slice_ms']:.1f} ms "
              f"one call each: {r['volume_network_batch_speedup']:.2f}x", file=buf)
    return buf.getvalue().rstrip()
