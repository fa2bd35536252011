"""Metrics for a set of predictions (scikit-learn where it has them) and evaluation of a folder.

No TensorFlow at import time: evaluate_folder loads a model only when called.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins (Guo et al., 2017); not in scikit-learn."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def sensitivity_at_specificity(y_tumor: np.ndarray, p_tumor: np.ndarray, specificity: float = 0.95) -> dict:
    """Best sensitivity among thresholds whose specificity is at least the target."""
    fpr, tpr, thr = roc_curve(y_tumor, p_tumor)
    ok = (1 - fpr) >= specificity
    k = int(np.argmax(np.where(ok, tpr, -1)))
    return {"sensitivity": float(tpr[k]), "specificity": float(1 - fpr[k]), "threshold": float(min(thr[k], 1.0))}


def binary_metrics(y_tumor: np.ndarray, p_tumor: np.ndarray, threshold: float = 0.5) -> dict:
    """Tumor vs no tumor from P(tumor): AUC, sensitivity at 95% specificity, accuracy and F1 at 0.5."""
    y_tumor = np.asarray(y_tumor, int)
    p_tumor = np.asarray(p_tumor, float)
    pred = (p_tumor >= threshold).astype(int)
    out: dict = {
        "n": int(len(y_tumor)), "n_tumor": int(y_tumor.sum()),
        "accuracy": float(accuracy_score(y_tumor, pred)),
        "f1": float(f1_score(y_tumor, pred, zero_division=0)),
        "sensitivity": float(pred[y_tumor == 1].mean()) if (y_tumor == 1).any() else None,
        "specificity": float(1 - pred[y_tumor == 0].mean()) if (y_tumor == 0).any() else None,
        "confusion_matrix": confusion_matrix(y_tumor, pred, labels=[0, 1]).tolist(),
    }
    if len(set(y_tumor.tolist())) == 2:
        fpr, tpr, _ = roc_curve(y_tumor, p_tumor)
        out["roc_auc"] = float(roc_auc_score(y_tumor, p_tumor))
        out["at_95_specificity"] = sensitivity_at_specificity(y_tumor, p_tumor)
        out["roc_curve"] = {"fpr": _thin(fpr), "tpr": _thin(tpr)}
    return out


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict:
    """Everything the model card and the Model page show, for one labelled set."""
    y_true = np.asarray(y_true, int)
    probs = np.asarray(probs, float)
    pred = probs.argmax(axis=1)
    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    out: dict = {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, pred)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
        "confusion_matrix": confusion_matrix(y_true, pred, labels=labels).tolist(),
        "ece": expected_calibration_error(probs, y_true),
    }
    conf = probs.max(axis=1)
    frac, mean = calibration_curve((pred == y_true).astype(int), conf, n_bins=10, strategy="uniform")
    out["calibration_curve"] = {"confidence": mean.tolist(), "accuracy": frac.tolist()}
    if "notumor" in classes:
        y_tumor = (y_true != classes.index("notumor")).astype(int)
        out["tumor_vs_notumor"] = binary_metrics(y_tumor, 1 - probs[:, classes.index("notumor")])
    return out


def _thin(a: np.ndarray, n: int = 200) -> list[float]:
    """Keep curves small in JSON: at most n points, endpoints included."""
    a = np.asarray(a, float)
    if len(a) <= n:
        return a.round(5).tolist()
    idx = np.unique(np.linspace(0, len(a) - 1, n).round().astype(int))
    return a[idx].round(5).tolist()


def evaluate_folder(data_dir: str, model_path: str | None = None, batch_size: int = 64) -> dict:
    """Metrics of a model on any supported folder layout (all images, every split)."""
    from brainscan.runtime.inference import load_model, run_model
    from brainscan.scans import datasets as data_mod
    from brainscan.scans.batch import prepare_paths

    ds = data_mod.discover(data_dir)
    model = load_model(model_path)
    paths = [it.path for it in ds.items]
    inputs, ok, errors = prepare_paths(paths, model.size)
    preds = run_model(model, inputs, batch_size)
    labels = [ds.items[i].label for i in ok]
    result: dict = {"data": data_dir, "model": model.name, "n_images": len(paths), "n_unreadable": len(errors)}
    if ds.is_binary or not set(ds.classes) <= set(model.classes):
        y = np.array([lbl != "notumor" for lbl in labels], int)
        result["tumor_vs_notumor"] = binary_metrics(y, np.array([p.tumor_probability for p in preds]))
    else:
        y = np.array([model.classes.index(lbl) for lbl in labels])
        probs = np.array([[p.probabilities[c] for c in model.classes] for p in preds])
        result.update(classification_metrics(y, probs, model.classes))
    return result
