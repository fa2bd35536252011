"""Calibrated prediction and loading a model folder, without importing TensorFlow.

``load_model`` runs a folder through LiteRT when it has ``model.tflite`` (brainscan.runtime.lite) and falls
back to Keras (brainscan.runtime.keras_model, which imports TensorFlow) when it does not or when asked to.
The unfamiliar-scan score combines the feature check (Mahalanobis, here) and the pixel check
(brainscan.runtime.familiarity).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from brainscan.errors import ModelError
from brainscan.modelfolder import HEAD_FILE, LITE_FILE, has_lite_files, read_folder
from brainscan.runtime import familiarity

BACKENDS = ("auto", "litert", "keras")


@runtime_checkable
class Model(Protocol):
    """A loaded model folder: runtime.lite.LiteModel (no TensorFlow), runtime.keras_model.LoadedModel, or a fake
    in tests. The card's fields (classes, size, temperature, threshold) come from modelfolder.CardFields."""

    card: dict
    path: Path
    ood: dict

    @property
    def classes(self) -> list[str]: ...

    @property
    def size(self) -> int: ...

    @property
    def temperature(self) -> float: ...

    @property
    def tumor_threshold(self) -> float | None: ...

    def features_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """n inputs -> (n x K pooled features, n x classes logits)."""
        ...

    def cam(self, x: np.ndarray, class_index: int, method: str = "gradcam", layer: str | None = None) -> np.ndarray:
        """Unnormalised CAM at input size for one input (size x size x C)."""
        ...


def load_model(path: str | os.PathLike | None = None, backend: str = "auto") -> Model:
    """A model folder ready to predict: LiteModel (no TensorFlow) where possible, else Keras' LoadedModel."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    folder, card, ood = read_folder(path)
    from brainscan.runtime.lite import load_lite

    if backend != "keras" and has_lite_files(folder):
        try:
            return load_lite(folder, card, ood)
        except ModelError:
            if backend == "litert":
                raise
    elif backend == "litert":
        raise ModelError(f"{folder} has no {LITE_FILE}; save it again with brainscan to add one.")
    if importlib.util.find_spec("keras") is None:  # the serving image (requirements-serve.txt): LiteRT only
        raise ModelError(f"The model in {folder.name} has no {LITE_FILE} and {HEAD_FILE} that LiteRT can run, and "
                         "this installation has no TensorFlow for its model.keras: add them with `python -m brainscan "
                         "export-litert MODEL_DIR` where requirements.txt is installed.")
    from brainscan.runtime.keras_model import load_keras_model

    return load_keras_model(folder, card, ood)


def fresh_input(model):
    """A callable that empties the model's one-input cache (runtime.lite), so that timing the same scan again
    measures the network and not the cache. A no-op for back-ends without one."""
    return getattr(model, "forget_last_input", lambda: None)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def mahalanobis(features: np.ndarray, ood: dict[str, np.ndarray]) -> np.ndarray:
    """Distance of each feature vector to the nearest class mean."""
    diffs = features[:, None, :] - ood["means"][None]  # n x classes x d
    d2 = np.einsum("ncd,de,nce->nc", diffs, ood["precision"], diffs)
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


@dataclass(frozen=True)
class Prediction:
    """label is the answer (the decision at the operating threshold), top_class the single most probable class;
    they can differ (brainscan.runtime.answer words both)."""

    probabilities: dict[str, float]
    label: str  # the answer: 'notumor', or the most probable tumour class when P(tumor) >= threshold
    top_class: str  # the most probable class
    tumor_probability: float
    threshold: float | None  # the operating threshold on P(tumor); None for a model without 'notumor'
    ood_score: float | None  # 0..1: share of validation scans that look more ordinary, on the feature check
    # (Mahalanobis) or the pixel check (brainscan.runtime.familiarity), whichever is higher; near 1 = unfamiliar
    out_of_distribution: bool
    class_index: int  # of label

    @property
    def is_tumor(self) -> bool | None:
        """The decision tumour or not; None for a model without a 'notumor' class."""
        return None if self.threshold is None else self.label != "notumor"

    @property
    def tumor_type(self) -> str | None:
        return self.label if self.is_tumor else None

    def as_dict(self) -> dict:
        return {"label": self.label, "top_class": self.top_class, "probabilities": self.probabilities,
                "tumor_probability": self.tumor_probability, "ood_score": self.ood_score,
                "out_of_distribution": self.out_of_distribution}


OOD_THRESHOLD = 0.99  # flag scans further from the training data than 99% of validation scans


def ood_percentiles(feats: np.ndarray, inputs: np.ndarray, ood: dict) -> np.ndarray | None:
    """Per scan, the share of validation scans that look more ordinary on the feature check (Mahalanobis)
    or the pixel check (brainscan.runtime.familiarity), whichever is higher; None when the model has neither."""
    checks = []
    if ood and "val_distances" in ood:
        ref = np.sort(ood["val_distances"])
        checks.append(np.searchsorted(ref, mahalanobis(feats, ood)) / len(ref))
    if ood and familiarity.has_stats(ood):
        checks.append(familiarity.percentiles(np.asarray(inputs, np.float32), ood))
    return np.max(checks, axis=0) if checks else None


def decide(probabilities: dict[str, float], threshold: float | None) -> tuple[str, str]:
    """(the answer, the most probable class). The operating point: with a 'notumor' class and a threshold, a tumor
    when P(tumor) >= threshold, and then the most probable tumor class; else the most probable class."""
    top = max(probabilities, key=probabilities.get)
    if threshold is None or "notumor" not in probabilities:
        return top, top
    if 1.0 - probabilities["notumor"] < threshold:
        return "notumor", top
    return max((c for c in probabilities if c != "notumor"), key=probabilities.get), top


def make_prediction(probabilities: dict[str, float], threshold: float | None,
                    ood_score: float | None = None) -> Prediction:
    """A Prediction from calibrated probabilities (class order kept), decided by :func:`decide`."""
    classes = list(probabilities)
    label, top = decide(probabilities, threshold)
    ptumor = 1.0 - probabilities["notumor"] if "notumor" in probabilities else float("nan")
    if "notumor" not in probabilities:
        threshold = None
    return Prediction(dict(probabilities), label, top, float(ptumor), None if threshold is None else float(threshold),
                      ood_score, bool(ood_score is not None and ood_score >= OOD_THRESHOLD), classes.index(label))


def predict_batch(model: Model, inputs: np.ndarray) -> list[Prediction]:
    """inputs: n x size x size x 1 float32 from brainscan.scans.preprocess.prepare; model: a LiteModel or
    LoadedModel."""
    feats, logits = model.features_and_logits(np.asarray(inputs, np.float32))
    probs = softmax(logits, model.temperature)
    classes = model.classes
    unusual = ood_percentiles(feats, inputs, model.ood)
    scores: list[float | None] = [None] * len(probs) if unusual is None else [float(v) for v in unusual]
    threshold = model.tumor_threshold if "notumor" in classes else None
    return [make_prediction({c: float(v) for c, v in zip(classes, p, strict=True)}, threshold, scores[i])
            for i, p in enumerate(probs)]


def predict(model: Model, model_input: np.ndarray) -> Prediction:
    """One prepared image (size x size x 1) -> calibrated Prediction."""
    return predict_batch(model, model_input[None])[0]


def run_model(model: Model, inputs: np.ndarray, batch_size: int = 64) -> list[Prediction]:
    """predict_batch over many inputs, batch_size at a time."""
    out = []
    for s in range(0, len(inputs), batch_size):
        out.extend(predict_batch(model, inputs[s : s + batch_size]))
    return out
