"""Benchmark EfficientNet-Lite0 (brainscan.training.efficientnet_lite) on this CPU.

Measures
  (a) training throughput (images/s) of a grayscale-in 4-class classifier (Concatenate to RGB -> 0..255 ->
      preprocess -> Lite0 with ImageNet weights -> GlobalAveragePooling2D -> Dropout -> Dense(4)) with AdamW,
      batch 32, per input size and output stride (model.fit on in-memory random batches, after a warm-up),
  (b) the float32 TFLite file of a (last feature map, logits) model converted with TFLiteConverter and the
      largest logit difference between LiteRT and Keras,
  (c) the parameter count.
Prints one JSON object.

    nice -n 15 python scripts/bench_efficientnet_lite.py [--sizes 128 160 192] [--strides 32 16] [--steps 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
from keras import layers  # noqa: E402

from brainscan.training import efficientnet_lite as effl  # noqa: E402


def grayscale_classifier(size: int, output_stride: int, state, n_classes: int = 4) -> keras.Model:
    inp = keras.Input((size, size, 1), name="image")  # 0..1 grayscale, as brainscan feeds its models
    x = layers.Concatenate(name="to_rgb")([inp, inp, inp])
    x = layers.Rescaling(255.0, name="to_255")(x)
    x = effl.preprocess_rgb255(x)
    x = effl.build_efficientnet_lite0(x, output_stride=output_stride)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    model = keras.Model(inp, out, name="efficientnet_lite0_transfer")
    effl.load_imagenet_weights(model, state)
    return model


def train_throughput(model: keras.Model, size: int, batch: int, steps: int, warmup: int) -> float:
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((batch * 2, size, size, 1), dtype=np.float32)
    y = rng.integers(0, 4, batch * 2)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat().prefetch(2)
    model.fit(ds, epochs=1, steps_per_epoch=warmup, verbose=0)
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    return batch * steps / (time.perf_counter() - start)


def lite_check(model: keras.Model, size: int) -> dict:
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    two = keras.Model(model.inputs, [model.get_layer(effl.TARGET_LAYER).output, model.output])
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the saved artifact's signature
        blob = tf.lite.TFLiteConverter.from_keras_model(two).convert()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(blob)
        interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    probe = np.random.default_rng(1).random((1, size, size, 1), dtype=np.float32)
    fmap_k, logits_k = (np.asarray(t) for t in two([probe], training=False))
    interp.set_tensor(interp.get_input_details()[0]["index"], probe)
    interp.invoke()
    outs = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    logits_l = next(o for o in outs if o.shape == logits_k.shape)
    fmap_l = next(o for o in outs if o.shape == fmap_k.shape)
    return {"tflite_bytes": len(blob), "tflite_mib": round(len(blob) / 2**20, 2),
            "max_logit_diff": float(np.abs(logits_l - logits_k).max()),
            "max_fmap_diff": float(np.abs(fmap_l - fmap_k).max()), "fmap_shape": list(fmap_k.shape[1:])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 192])
    ap.add_argument("--strides", type=int, nargs="+", default=[32, 16])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--lite-size", type=int, default=160)
    args = ap.parse_args()

    state = effl.read_torch_legacy(effl.imagenet_weights_path())
    result: dict = {"batch": args.batch, "steps": args.steps, "train_images_per_s": {}, "lite": {}}
    for stride in args.strides:
        model = grayscale_classifier(args.lite_size, stride, state)
        result["params"] = model.count_params()
        result["lite"][f"os{stride}"] = lite_check(model, args.lite_size)
        print(json.dumps({f"lite os{stride}": result["lite"][f"os{stride}"]}), file=sys.stderr, flush=True)
    for size in args.sizes:
        for stride in args.strides:
            keras.backend.clear_session()
            model = grayscale_classifier(size, stride, state)
            ips = train_throughput(model, size, args.batch, args.steps, args.warmup)
            result["train_images_per_s"][f"{size}px_os{stride}"] = round(ips, 1)
            print(json.dumps({f"{size}px_os{stride}": round(ips, 1)}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
