"""Per-source figures and the operating threshold of a recipe run (several sources at once).

:func:`breakdown` scores every (source, sequence) cell of a held-out part; :func:`operating_threshold` picks
the P(tumor) threshold on validation. The prepare step of every run is brainscan.training.prepare.
"""

from __future__ import annotations

import numpy as np

from brainscan.scans.manifest import Item


def breakdown(items: list[Item], y: np.ndarray, probs: np.ndarray, classes: list[str],
              threshold: float | None) -> dict:
    """Per source and sequence: n, 4-class accuracy, tumor ROC AUC (where both kinds are present), the share
    called tumor at the operating threshold and, where both kinds are present, the sensitivity and specificity
    there. A source with several sequences also gets "<source>/all": its sequences pooled, as when a site's scans
    of every sequence arrive mixed (one threshold must hold for all of them)."""
    notumor = classes.index("notumor")
    p_tumor = 1.0 - probs[:, notumor]
    cells = sorted({(it.source, it.sequence) for it in items})
    several = {src for src in {c[0] for c in cells} if sum(c[0] == src for c in cells) > 1}
    out: dict = {}
    for src, seq in cells + [(src, "all") for src in sorted(several)]:
        m = np.array([it.source == src and seq in ("all", it.sequence) for it in items])
        out[f"{src}/{seq}"] = _cell(y[m] != notumor, probs[m], y[m], p_tumor[m], threshold)
    return out


def _cell(is_tumor: np.ndarray, probs: np.ndarray, y: np.ndarray, p_tumor: np.ndarray,
          threshold: float | None) -> dict:
    from brainscan.evaluation.metrics import binary_metrics

    yt = is_tumor.astype(int)
    entry = {"n": int(len(y)), "n_tumor": int(yt.sum()), "accuracy": float(np.mean(probs.argmax(1) == y))}
    if threshold is not None:
        entry["called_tumor"] = float(np.mean(p_tumor >= threshold))
    if len(set(yt.tolist())) == 2:
        entry["tumor_roc_auc"] = binary_metrics(yt, p_tumor)["roc_auc"]
        if threshold is not None:
            entry["sensitivity"] = float(np.mean(p_tumor[yt == 1] >= threshold))
            entry["specificity"] = float(np.mean(p_tumor[yt == 0] < threshold))
    return entry


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
