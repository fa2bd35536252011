"""Full-integer (int8) LiteRT export of a model folder, calibrated on a representative set of its own training
images (imports TensorFlow).

``python -m brainscan quantize MODEL --out FOLDER [--data-root DIR] [--samples 300]`` copies MODEL to FOLDER
with an int8 model.tflite: weights and activations in int8, float32 in and out (the converter adds the
quantize and dequantize steps), so the runtime (brainscan.runtime.lite) and the closed-form CAMs run it
unchanged. The representative inputs are drawn from the model's split.json training part and prepared as for
training. Whether the int8 folder replaces the float one is decided by measuring both with the same commands
(`external`, `compare`), never assumed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from brainscan.modelfolder import LITE_FILE, write_json


def representative_inputs(model_dir: Path, data_root: Path, size: int, samples: int, seed: int = 0) -> np.ndarray:
    """`samples` prepared training images of the model's own split (blank slices skipped)."""
    from brainscan.scans.batch import prepare_paths
    from brainscan.training.prepare import BLANK_STD

    files = json.loads((model_dir / "split.json").read_text())["files"]["train"]
    pick = np.random.default_rng(seed).permutation(len(files))[: samples * 2]
    x, _, _ = prepare_paths([str(data_root / files[i]) for i in pick], size)
    x = x[x.reshape(len(x), -1).std(axis=1) > BLANK_STD]
    return x[:samples]


def int8_flatbuffer(keras_model, inputs: np.ndarray) -> bytes:
    """The two-output LiteRT model of brainscan.training.export (feature map, logits) in full integer."""
    import tensorflow as tf

    from brainscan.training.export import lite_outputs_model

    converter = tf.lite.TFLiteConverter.from_keras_model(lite_outputs_model(keras_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative():
        for x in inputs:
            yield [x[None].astype(np.float32)]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def quantize_folder(model_dir: str, out: str, data_root: str, samples: int = 300) -> dict:
    """Copy the model folder to `out` with an int8 model.tflite; returns what the card records about it."""
    from brainscan.runtime.keras_model import load_model

    src, dst = Path(model_dir), Path(out)
    model = load_model(src)
    inputs = representative_inputs(src, Path(data_root), model.size, samples)
    flat = int8_flatbuffer(model.keras_model, inputs)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # Figures measured on the float model do not carry over: external sets, uncertainty and sanity are re-run.
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("comparison.json", "external.json", "uncertainty.json",
                                                            "sanity.json", "sanity.npz", "MODEL_CARD.md"))
    (tmp / LITE_FILE).write_bytes(flat)
    card = json.loads((tmp / "card.json").read_text())
    for key in ("external", "limitations", "uncertainty", "pointing_heatmap"):
        card.pop(key, None)
    card["lite_runtime"] = {"weights": "int8 (full integer; float32 input and output)",
                            "representative_set": f"{len(inputs)} training images of the model's own split",
                            "bytes": len(flat)}
    write_json(tmp / "card.json", card)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return card["lite_runtime"]
