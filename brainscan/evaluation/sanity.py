"""Heatmap sanity check: the model-randomisation test of Adebayo et al. (NeurIPS 2018, "Sanity checks for
saliency maps"), for the Grad-CAM the app shows.

From the top of the network down, layer after layer is re-initialised (cascading: a stage keeps the
layers above it randomised too) and the Grad-CAM of a few library cases is computed again, for the class the
trained model predicted. If the heatmap depended only on the image (an edge detector), it would survive the
randomisation; a heatmap that depends on what the model learned changes, and its Spearman rank correlation
with the trained model's heatmap falls. ``python -m brainscan sanity MODEL`` writes sanity.json (stages, the
correlations) and sanity.npz (the images and maps) into the model folder; the Model page draws them.

Needs the Keras model (model.keras, in every model folder), so this module imports TensorFlow: it is a
command, not the scan path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

JSON_FILE = "sanity.json"
NPZ_FILE = "sanity.npz"
MAX_STAGES = 6  # single top layers randomised one after another; then one stage with every layer
CASES = ("case01", "case04", "case07", "case13", "case15", "case22")  # glioma on 3 sites + BRATS, an MS FLAIR


def _weighted_layers(model) -> list:
    """Layers holding weights, in the network's order, looking inside nested models."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_weighted_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def _stages(layers: list) -> list[list]:
    """Cascading stages from the top: each stage adds one layer with a kernel (and any normalisation layers
    between it and the previous kernel layer). At most MAX_STAGES such stages, then all layers."""
    groups: list[list] = []
    pending: list = []
    for layer in reversed(layers):
        pending.append(layer)
        if any("kernel" in w.path.split("/")[-1] for w in layer.weights):
            groups.append(pending)
            pending = []
    if pending and groups:
        groups[-1].extend(pending)
    stages, done = [], []
    for g in groups[:MAX_STAGES]:
        done = done + g
        stages.append(list(done))
    if len(groups) > MAX_STAGES:
        stages.append([lay for g in groups for lay in g])
    return stages


def _reinit(layer, rng: np.random.Generator) -> None:
    """Re-initialise a layer as Keras' defaults would: Glorot-uniform kernels, zero biases and shifts, unit
    scales and variances (NumPy, seeded)."""
    for w in layer.weights:
        name = w.path.split("/")[-1]
        shape = tuple(w.shape)
        if "kernel" in name and len(shape) >= 2:
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = np.sqrt(6.0 / max(fan_in + fan_out, 1))
            w.assign(rng.uniform(-limit, limit, shape).astype(np.float32))
        elif name in ("gamma", "moving_variance") or name.endswith("variance"):
            w.assign(np.ones(shape, np.float32))
        else:
            w.assign(np.zeros(shape, np.float32))


def _cam_model(keras_model):
    import keras

    from brainscan.cam.keras_vis import find_target_layer

    target = keras_model.get_layer(find_target_layer(keras_model))
    return keras.Model(keras_model.inputs, [target.output, keras_model.output])


def _gradcams(two, dense, inputs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The app's heatmap of each input for its class: Grad-CAM, or CAM where Grad-CAM is empty (the registry's
    when_empty), in closed form (brainscan.cam.headcam; equal to tf-keras-vis for the pooled linear head),
    normalised to [0, 1] at input size."""
    from brainscan.cam import headcam
    from brainscan.cam import methods as cam_methods
    from brainscan.cam.heatmap import normalize_cam

    fmaps, _ = (np.asarray(t) for t in two(inputs, training=False))
    kernel = np.asarray(dense.get_weights()[0], np.float32)
    gradcam = cam_methods.get("gradcam")
    fallback = cam_methods.get(gradcam.when_empty).closed_form
    out = []
    for f, k in zip(fmaps, classes, strict=True):
        head = cam_methods.HeadInputs(f, kernel)
        m = normalize_cam(headcam.expand(gradcam.closed_form(head, int(k)), inputs.shape[1]))
        if not m.any():
            m = normalize_cam(headcam.expand(fallback(head, int(k)), inputs.shape[1]))
        out.append(m)
    return np.stack(out)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0  # a flat map ranks nothing
    return float(spearmanr(a, b).statistic)


def run(model_dir: str, case_ids: tuple[str, ...] = CASES, seed: int = 0, command: str = "") -> dict:
    from brainscan.runtime.inference import softmax
    from brainscan.runtime.keras_model import load_model
    from brainscan.scans import cases as case_lib
    from brainscan.scans.batch import load_gray
    from brainscan.scans.preprocess import prepare

    folder = Path(model_dir)
    loaded = load_model(folder)
    km = loaded.keras_model
    library = {c.id: c for c in case_lib.load_library()}
    chosen = [library[i] for i in case_ids if i in library]
    if not chosen:
        raise FileNotFoundError("The case library (case_library/cases.json) is missing.")
    inputs = np.stack([prepare(load_gray(str(c.path)), loaded.size, keep_steps=False).input for c in chosen])
    two = _cam_model(km)
    dense = km.layers[-1]
    logits = np.asarray(km(inputs, training=False))
    classes = softmax(logits, loaded.temperature).argmax(axis=1)
    trained = _gradcams(two, dense, inputs, classes)
    layers = _weighted_layers(km)
    originals = {id(lay): [np.array(w) for w in lay.get_weights()] for lay in layers}
    rng = np.random.default_rng(seed)
    maps, stages = [trained], [{"name": "trained model", "randomised": [], "spearman": [1.0] * len(chosen)}]
    try:
        for stage in _stages(layers):
            for lay in stage:
                _reinit(lay, rng)
            m = _gradcams(two, dense, inputs, classes)
            maps.append(m)
            kernels = [lay.name for lay in stage if any("kernel" in w.path.split("/")[-1] for w in lay.weights)]
            stages.append({"name": f"down to {kernels[-1]}" if len(stage) < len(layers) else "all layers",
                           "randomised": [lay.name for lay in stage],
                           "spearman": [spearman(t, r) for t, r in zip(trained, m, strict=True)]})
            for lay in stage:  # restore, then the next stage re-initialises cumulatively from scratch
                lay.set_weights(originals[id(lay)])
    finally:
        for lay in layers:
            lay.set_weights(originals[id(lay)])
    for s in stages:
        s["mean_spearman"] = float(np.mean(s["spearman"]))
    result = {"method": "gradcam, cam where empty",
              "test": "cascading model randomisation (Adebayo et al., NeurIPS 2018)",
              "model": loaded.name, "seed": seed, "cases": [c.id for c in chosen],
              "case_titles": [c.title for c in chosen], "truths": [c.truth for c in chosen],
              "classes": [loaded.classes[int(k)] for k in classes], "stages": stages, "command": command,
              "layers_with_weights": len(layers)}
    tmp = folder / f".{NPZ_FILE}.tmp.npz"
    np.savez_compressed(tmp, inputs=inputs[..., 0].astype(np.float16), maps=np.stack(maps).astype(np.float16))
    os.replace(tmp, folder / NPZ_FILE)
    from brainscan.modelfolder import write_json

    write_json(folder / JSON_FILE, result)
    return result


def read(folder: Path | str) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(sanity.json, arrays of sanity.npz) of a model folder, or None when not computed. NumPy only."""
    folder = Path(folder)
    try:
        info = json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
        with np.load(folder / NPZ_FILE) as f:
            arrays = {k: np.asarray(f[k], np.float32) for k in ("inputs", "maps")}
    except (OSError, ValueError, KeyError):
        return None
    return info, arrays
