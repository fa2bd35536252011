"""Matplotlib figures for the Model page's deferral and heatmap-sanity sections (from uncertainty.json and
sanity.json/.npz). ``Figure`` directly, no pyplot state; no TensorFlow."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

COLOURS = {"val": "#888888", "test_dedup": "#1f5fa8", "brats_flair": "#d9822b", "brats_t1c": "#b5452c",
           "yes_no_dedup": "#4c9a2a"}
LABELS = {"val": "validation", "test_dedup": "test (deduplicated)", "brats_flair": "BRATS FLAIR",
          "brats_t1c": "BRATS T1 contrast", "yes_no_dedup": "yes/no (deduplicated)"}


def coverage_accuracy(settings: dict) -> Figure:
    """Accuracy on the answered scans against the share answered, one line per set; the threshold's point."""
    fig = Figure(figsize=(6.4, 4.0), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    for key, s in settings.get("sets", {}).items():
        c = s["curve"]
        colour = COLOURS.get(key, None)
        ax.plot(100 * np.array(c["coverage"]), 100 * np.array(c["accuracy"]), color=colour,
                label=f"{LABELS.get(key, key)} (n={s['n']})", lw=2 if key == "test_dedup" else 1.4,
                ls="--" if key == "val" else "-")
        t = s.get("at_threshold") or {}
        if t.get("accuracy_answered") is not None:
            ax.plot(100 * t["coverage"], 100 * t["accuracy_answered"], "o", color=colour, ms=6)
    ax.set_xlim(100, 0)
    ax.set_ylim(0, 101)
    ax.set_xlabel("Scans answered (%): the rest are deferred, most uncertain first")
    ax.set_ylabel("Accuracy on the answered scans (%)")
    ax.set_title("Coverage and accuracy (dots: the chosen threshold)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def sanity_grid(info: dict, inputs: np.ndarray, maps: np.ndarray, max_stages: int = 5) -> Figure:
    """Rows: cases; columns: the trained model's heatmap, then heatmaps after randomising more and more layers
    from the top (a few stages), each with its Spearman rank correlation to the trained map."""
    stages = info["stages"]
    pick = list(range(len(stages)))
    if len(pick) > max_stages:
        inner = np.linspace(1, len(stages) - 2, max_stages - 2).round().astype(int).tolist()
        pick = [0, *dict.fromkeys(inner), len(stages) - 1]
    n = len(info["cases"])
    fig = Figure(figsize=(1.55 * (len(pick) + 1), 1.6 * n + 0.5), dpi=100, layout="constrained")
    axes = fig.subplots(n, len(pick) + 1, squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(inputs[i], cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(f"{info['cases'][i]} ({info['truths'][i]})\nmodel: {info['classes'][i]}", fontsize=7)
        for j, k in enumerate(pick, 1):
            ax = axes[i, j]
            ax.imshow(inputs[i], cmap="gray", vmin=0, vmax=1)
            ax.imshow(maps[k, i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            title = stages[k]["name"] if i == 0 else ""
            ax.set_title((title + "\n" if title else "") + f"ρ = {stages[k]['spearman'][i]:.2f}", fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    return fig


def sanity_curve(info: dict) -> Figure:
    fig = Figure(figsize=(6.4, 3.0), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    names = [s["name"] for s in info["stages"]]
    per_case = np.array([s["spearman"] for s in info["stages"]])
    x = np.arange(len(names))
    for col in per_case.T:
        ax.plot(x, col, color="#9bb7d4", lw=1)
    ax.plot(x, per_case.mean(axis=1), color="#1f5fa8", lw=2.5, marker="o", label="mean over cases")
    ax.axhline(0, color="#888888", lw=0.8)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(-1, 1.05)
    ax.set_ylabel("Spearman ρ with the trained map")
    ax.set_title("Cascading randomisation from the top layer down", fontsize=10)
    ax.legend(fontsize=8)
    return fig
