"""Per-source figures and the operating threshold of a recipe run (several sources at once).

:func:`breakdown` scores every (source, sequence) cell of a held-out part; :func:`operating_threshold` picks
the P(tumor) threshold on validation. The prepare step of every run is brainscan.training.prepare.
"""

from __future__ import annotations

import numpy as np

from brainscan.scans.manifest import Item


def breakdown(items: list[Item], y: np.ndarray, probs: np.ndarray, classes: list[str],
              threshold: float | None) -> dict:
    """Per source and sequence: n, 4-class accuracy, tumor ROC AUC (where both kinds are present) and the
    share called tumor at the operating threshold (the false-positive rate on tumor-free cells)."""
    from brainscan.evaluation.metrics import binary_metrics

    notumor = classes.index("notumor")
    p_tumor = 1.0 - probs[:, notumor]
    cells = sorted({(it.source, it.sequence) for it in items})
    out: dict = {}
    for src, seq in cells:
        m = np.array([it.source == src and it.sequence == seq for it in items])
        yt = (y[m] != notumor).astype(int)
        entry = {"n": int(m.sum()), "n_tumor": int(yt.sum()),
                 "accuracy": float(np.mean(probs[m].argmax(1) == y[m]))}
        if threshold is not None:
            entry["called_tumor"] = float(np.mean(p_tumor[m] >= threshold))
        if len(set(yt.tolist())) == 2:
            entry["tumor_roc_auc"] = binary_metrics(yt, p_tumor[m])["roc_auc"]
        out[f"{src}/{seq}"] = entry
    return out


def operating_threshold(y: np.ndarray, p_tumor: np.ndarray, notumor: int, sensitivity: float = 0.95) -> dict:
    """The highest P(tumor) threshold whose sensitivity on these (validation) images is at least the target."""
    tumor = p_tumor[y != notumor]
    if len(tumor) == 0:
        return {}
    candidates = np.sort(tumor)[::-1]
    k = int(np.ceil(sensitivity * len(tumor))) - 1  # the k-th highest tumor score keeps k+1 of them
    t = float(candidates[min(max(k, 0), len(candidates) - 1)])
    free = p_tumor[y == notumor]
    return {"tumor_probability": t, "chosen_on": "validation", "target_sensitivity": sensitivity,
            "sensitivity": float(np.mean(tumor >= t)),
            "specificity": float(np.mean(free < t)) if len(free) else None}
