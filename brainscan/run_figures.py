"""Matplotlib figures for training runs: curves, confusion matrix, ROC and calibration.

Figures are built with matplotlib.figure.Figure (no pyplot global state, safe in Streamlit threads).
Every function takes plain data as found in history.json / metrics.json and overlays several runs
when given a {label: data} mapping.
"""

from __future__ import annotations

from matplotlib.figure import Figure

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def training_curves(histories: dict[str, dict]) -> Figure:
    """Loss and accuracy per epoch, training (solid) and validation (dashed), one colour per run."""
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for k, (label, hist) in enumerate(histories.items()):
        color = COLORS[k % len(COLORS)]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            for prefix, style in (("", "-"), ("val_", "--")):
                ys = hist.get(prefix + key) or []
                if ys:
                    name = "validation" if prefix else "training"
                    ax.plot(range(1, len(ys) + 1), ys, style, color=color, marker="o", markersize=3,
                            label=f"{label}: {name}" if len(histories) > 1 else name)
    for ax, title in ((ax_loss, "Loss (lower is better)"), (ax_acc, "Accuracy (higher is better)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.lines:
            ax.legend(fontsize=7)
    ax_acc.set_ylim(0, 1.02)
    return fig


def confusion_matrix(cm: list[list[int]], classes: list[str], title: str = "") -> Figure:
    """Counts with row-normalised colour; rows are the true class, columns the prediction."""
    import numpy as np

    m = np.asarray(cm, dtype=float)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    fig = Figure(figsize=(1.2 + 0.9 * n, 1.0 + 0.8 * n), layout="constrained")
    ax = fig.subplots()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=10,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(n), classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def roc_curves(curves: dict[str, dict]) -> Figure:
    """Tumor vs no tumor ROC: {label: {"fpr": [...], "tpr": [...], "auc": float}}."""
    fig = Figure(figsize=(3.8, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    for k, (label, c) in enumerate(curves.items()):
        auc = c.get("auc")
        ax.plot(c["fpr"], c["tpr"], color=COLORS[k % len(COLORS)],
                label=f"{label} (AUC {auc:.3f})" if auc is not None else label)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title("ROC: tumor vs no tumor", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def calibration(curves: dict[str, dict]) -> Figure:
    """Reliability diagram: {label: {"confidence": [...], "accuracy": [...], "ece": float}}."""
    fig = Figure(figsize=(3.8, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for k, (label, c) in enumerate(curves.items()):
        ece = c.get("ece")
        ax.plot(c["confidence"], c["accuracy"], marker="o", markersize=4, color=COLORS[k % len(COLORS)],
                label=f"{label} (ECE {ece:.3f})" if ece is not None else label)
    ax.set_xlabel("confidence of the predicted class")
    ax.set_ylabel("share correct")
    ax.set_title("Calibration", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig
