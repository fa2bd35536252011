"""Balanced sampling weights for the training part of a recipe run (Model v3). No TensorFlow here.

:func:`sampling_weights` gives per-item training weights (equal mass per class, and within a class equal mass
per (source, sequence) cell), so that no class is tied to one collection; brainscan.training.run draws the
balanced batches of a recipe run by them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from brainscan.scans.manifest import Item


def sampling_weights(items: Sequence[Item], cap: float = 10.0) -> np.ndarray:
    """Per-item training weights (mean 1) so that no class is tied to one collection.

    1. Within a class, every (source, sequence) cell gets the same total weight, shared equally by its
       items: a class seen in 4,000 brain-tumor-mri images and 400 IXI images learns from both equally.
    2. No item weighs more than ``cap`` x the median weight of its class (a cell of 5 images is not
       repeated hundreds of times); such a cell simply gets less than its equal share.
    3. Every class then gets the same total weight (classes are balanced whatever their size).
    4. Weights are scaled to mean 1, ready for ``sample_weight`` or as sampling probabilities (w / sum).
    """
    if not items:
        return np.zeros(0)
    labels = [it.label for it in items]
    cells = [(it.label, it.source, it.sequence) for it in items]
    cell_n = Counter(cells)
    cells_in_class = Counter(lab for lab, _, _ in cell_n)
    w = np.array([1.0 / (cells_in_class[c[0]] * cell_n[c]) for c in cells])
    classes = sorted(set(labels))
    lab = np.array(labels)
    for cls in classes:
        m = lab == cls
        w[m] = np.minimum(w[m], cap * np.median(w[m]))
        w[m] /= w[m].sum() * len(classes)
    return w * (len(items) / w.sum())
