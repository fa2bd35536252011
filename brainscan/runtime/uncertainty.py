"""Uncertainty by test-time augmentation: does the calibrated answer hold when the scan is moved a little?

The prepared model input is shown to the network in a few harmless variants (a left-right flip, small
shifts and scales: VIEWS, one batch through the same runtime, LiteRT or Keras); the spread of the calibrated
probabilities over the views is the score. It is a second signal beside the unfamiliar-scan check (which
asks whether the image looks like the training data, not whether the answer is stable). A model folder's
``uncertainty.json`` (written by ``python -m brainscan uncertainty``, brainscan.evaluation.deferral) names the score
chosen on the validation split and the threshold above which the answer reads "uncertain: needs a human".
No TensorFlow here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from brainscan.runtime.inference import softmax

FILE = "uncertainty.json"
SHIFT = 0.05  # of the input side
# (name, horizontal flip, dx, dy in units of SHIFT, scale); the first is the scan as the model sees it.
VIEWS: tuple[tuple[str, bool, float, float, float], ...] = (
    ("as is", False, 0, 0, 1.0),
    ("flipped left-right", True, 0, 0, 1.0),
    ("shifted right", False, 1, 0, 1.0),
    ("shifted down", False, 0, 1, 1.0),
    ("shifted up-left", False, -1, -1, 1.0),
    ("zoomed out 8%", False, 0, 0, 0.92),
    ("zoomed in 8%", False, 0, 0, 1.08),
    ("flipped, zoomed in 4%", True, 0, 0, 1.04),
)


def views(x: np.ndarray) -> np.ndarray:
    """One prepared input (size x size x C) -> len(VIEWS) x size x size x C float32 (zero outside)."""
    x = np.asarray(x, np.float32)
    size = x.shape[0]
    out = []
    for _, flip, dx, dy, scale in VIEWS:
        img = x[:, ::-1] if flip else x
        c = (size - 1) / 2.0
        step = round(SHIFT * size)  # whole pixels: a shift moves the image, it does not blur it
        m = np.array([[scale, 0, c * (1 - scale) + dx * step],
                      [0, scale, c * (1 - scale) + dy * step]], np.float32)
        warped = cv2.warpAffine(np.ascontiguousarray(img), m, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out.append(warped.reshape(x.shape))
    return np.stack(out)


def view_probabilities(model, inputs: np.ndarray) -> np.ndarray:
    """n prepared inputs -> n x views x classes calibrated probabilities (one runtime call per 64 views)."""
    inputs = np.asarray(inputs, np.float32)
    batch = np.concatenate([views(x) for x in inputs]) if len(inputs) else np.zeros((0, *inputs.shape[1:]))
    logits = []
    step = 64
    for s in range(0, len(batch), step):
        logits.append(model.features_and_logits(batch[s : s + step])[1])
    logits = np.concatenate(logits) if logits else np.zeros((0, len(model.classes)))
    return softmax(logits, model.temperature).reshape(len(inputs), len(VIEWS), -1)


# --- scores: n x views x classes -> n (higher = less sure) ----------------------------------------

def tta_spread(p: np.ndarray) -> np.ndarray:
    """Mean total-variation distance between each view's probabilities and their mean (0: every view agrees)."""
    mean = p.mean(axis=1, keepdims=True)
    return 0.5 * np.abs(p - mean).sum(axis=2).mean(axis=1)


def tta_confidence(p: np.ndarray) -> np.ndarray:
    """1 minus the largest probability of the views' average."""
    return 1.0 - p.mean(axis=1).max(axis=1)


def confidence(p: np.ndarray) -> np.ndarray:
    """1 minus the largest probability of the scan as is (no augmentation: the baseline)."""
    return 1.0 - p[:, 0].max(axis=1)


SIGNALS = {"tta_spread": tta_spread, "tta_confidence": tta_confidence, "confidence": confidence}
SIGNAL_LABELS = {
    "tta_spread": "spread of the calibrated probabilities over 8 augmented views",
    "tta_confidence": "1 - top probability of the average over 8 augmented views",
    "confidence": "1 - top calibrated probability (one view)",
}


def read_settings(folder: Path | str | None) -> dict | None:
    """The model folder's uncertainty.json, or None when it was not computed for this model."""
    if folder is None:
        return None
    try:
        data = json.loads((Path(folder) / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("signal") not in SIGNALS or "threshold" not in data:
        return None
    return data


@dataclass
class Uncertainty:
    score: float
    signal: str
    threshold: float | None  # None: no threshold chosen for this model (uncertainty.json missing)
    needs_human: bool
    view_labels: list[str]  # the most likely class of each view, in VIEWS order
    tumour_probabilities: list[float]  # per view; empty for a model without a notumor class
    ms: float

    @property
    def views_agreeing(self) -> int:
        return sum(v == self.view_labels[0] for v in self.view_labels)

    def as_dict(self) -> dict:
        return {"score": self.score, "signal": self.signal, "threshold": self.threshold,
                "needs_human": self.needs_human, "views_agreeing": self.views_agreeing, "views": len(self.view_labels)}


def assess(model, x: np.ndarray, settings: dict | None) -> Uncertainty:
    """The uncertainty of one prepared input, with the folder's signal and threshold (tta_spread and no
    threshold when settings is None)."""
    t = time.perf_counter()
    p = view_probabilities(model, np.asarray(x)[None])
    signal = settings["signal"] if settings else "tta_spread"
    threshold = float(settings["threshold"]) if settings else None
    s = float(SIGNALS[signal](p)[0])
    classes = model.classes
    labels = [classes[int(k)] for k in p[0].argmax(axis=1)]
    ptum = (1.0 - p[0][:, classes.index("notumor")]).tolist() if "notumor" in classes else []
    return Uncertainty(s, signal, threshold, bool(threshold is not None and s > threshold), labels,
                       [float(v) for v in ptum], 1000 * (time.perf_counter() - t))
