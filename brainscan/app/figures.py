"""Matplotlib figures for the Model page, built from the JSON files saved with a model.

Uses ``matplotlib.figure.Figure`` directly (no pyplot global state), so it is safe in Streamlit's threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_BLUE, _ORANGE, _GREY = "#1f5fa8", "#d9822b", "#888888"


def _figure(width: float = 4.8, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str = "") -> Figure:
    """Counts with the row percentage (share of each true class) in every cell."""
    cm = np.asarray(matrix, dtype=float)
    n = len(labels)
    fig = _figure(4.8, 4.3)
    ax = fig.add_subplot()
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            dark = share[i, j] > 0.55
            ax.text(j, i, f"{int(cm[i, j])}\n{100 * share[i, j]:.0f}%", ha="center", va="center", fontsize=10,
                    color="white" if dark else "black")
    ax.set_xticks(range(n), labels, rotation=30, ha="right", fontsize=9)
    ax.set_yticks(range(n), labels, fontsize=9)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(title or "Confusion matrix (count and % of true class)", fontsize=10)
    return fig


def roc_curve(fpr: Sequence[float], tpr: Sequence[float], auc: float | None,
              operating_point: Mapping[str, float] | None = None, title: str = "") -> Figure:
    """Tumor-vs-no-tumor ROC curve with the chance line and the 95%-specificity operating point."""
    fig = _figure()
    ax = fig.add_subplot()
    label = f"Model (AUC {auc:.3f})" if auc is not None else "Model"
    ax.plot(fpr, tpr, color=_BLUE, lw=2, label=label, drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], ls="--", color=_GREY, lw=1, label="Chance (AUC 0.5)")
    if operating_point and operating_point.get("sensitivity") is not None:
        spec = float(operating_point.get("specificity", 0.95))
        sens = float(operating_point["sensitivity"])
        ax.plot([1 - spec], [sens], "o", color=_ORANGE, ms=7,
                label=f"At {100 * spec:.0f}% specificity: {100 * sens:.0f}% sensitivity")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("False-positive rate (1 - specificity)")
    ax.set_ylabel("True-positive rate (sensitivity)")
    ax.set_title(title or "ROC: any tumor vs no tumor", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def calibration_curve(confidence: Sequence[float], accuracy: Sequence[float], ece: float | None = None,
                      title: str = "") -> Figure:
    """Reliability diagram: how often the model was right at each level of stated confidence."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color=_GREY, lw=1, label="Perfectly calibrated")
    label = f"Model (ECE {ece:.3f})" if ece is not None else "Model"
    ax.plot(confidence, accuracy, "o-", color=_BLUE, lw=2, ms=5, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Stated confidence (top probability)")
    ax.set_ylabel("Share actually correct")
    ax.set_title(title or "Calibration (reliability diagram)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def training_curves(history: Mapping[str, Sequence[float]]) -> Figure:
    """Loss and accuracy per epoch, training vs validation."""
    fig = _figure(7.6, 3.3)
    axes = fig.subplots(1, 2)
    for ax, key, name in ((axes[0], "loss", "Loss (lower is better)"),
                          (axes[1], "accuracy", "Accuracy (higher is better)")):
        for prefix, colour, label in (("", _BLUE, "Training"), ("val_", _ORANGE, "Validation")):
            values = history.get(prefix + key)
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, "o-", color=colour, lw=2, ms=4, label=label)
        ax.set_xlabel("Epoch")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        n = max((len(history.get(k) or []) for k in ("loss", "accuracy", "val_loss", "val_accuracy")), default=0)
        if 0 < n <= 12:
            ax.set_xticks(range(1, n + 1))
            ax.set_xlim(0.5, n + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def source_bars(source: str, rows: Sequence[Mapping]) -> Figure:
    """One source: per sequence (and which images), tumor ROC AUC, share called tumor and pointing-game hits."""
    measures = (("Tumor ROC AUC", _BLUE), ("Called tumor", _ORANGE), ("Pointing game", _GREY))
    short = {"held-out patients": "held-out", "institution never trained on": "new site",
             "external, never trained on": "external", "external, deduplicated": "dedup",
             "external, upside down": "turned"}
    labels = [f"{r['Sequence']}\n{short.get(r['Which images'], r['Which images'])}" for r in rows]
    fig = _figure(4.6, 3.2)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    width = 0.26
    for k, (name, colour) in enumerate(measures):
        values = [r.get(name) for r in rows]
        if all(v is None for v in values):
            continue
        bars = ax.bar(x + (k - 1) * width, [np.nan if v is None else v for v in values], width, label=name,
                      color=colour)
        ax.bar_label(bars, labels=["" if v is None else f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.12)
    ax.set_title(source, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return fig
