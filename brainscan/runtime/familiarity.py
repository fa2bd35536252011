"""How much a prepared scan looks like the training images, in pixel space. NumPy only.

The network's own features (Mahalanobis distance in brainscan.runtime.inference) say little about scans
from another source: the network maps them confidently into a known class. This second check looks
at the image itself: a 24x24 thumbnail of the model input is projected onto the principal components
of the training thumbnails; the score adds the distance inside that subspace (in units of each
component's spread) and the part of the image the subspace cannot explain (relative to the training
images' typical residual). Skull-stripped slices, other framings and photos score high.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 24
COMPONENTS = 32
PREFIX = "pixel_"  # keys inside ood.npz
UNFAMILIAR_CHECK = ("a scan is flagged when it looks less ordinary than 99% of the validation scans on either "
                    "the network's pooled features (Mahalanobis distance to the nearest class mean) or its pixels "
                    "(24x24 thumbnail against 32 principal components of the training images)")  # for the card


def thumbnails(inputs: np.ndarray) -> np.ndarray:
    """n x size x size x 1 model inputs -> n x THUMB*THUMB float32 vectors."""
    return np.stack([cv2.resize(np.asarray(x[..., 0], np.float32), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
                     .ravel() for x in inputs])


def fit(train_inputs: np.ndarray, val_inputs: np.ndarray, components: int = COMPONENTS) -> dict[str, np.ndarray]:
    """Principal components of the training thumbnails, and the validation scores as the reference."""
    t = thumbnails(train_inputs).astype(np.float64)
    mean = t.mean(axis=0)
    _, sing, vt = np.linalg.svd(t - mean, full_matrices=False)
    k = min(components, len(sing))
    stats = {PREFIX + "mean": mean.astype(np.float32), PREFIX + "components": vt[:k].astype(np.float32),
             PREFIX + "variance": (sing[:k] ** 2 / max(len(t) - 1, 1) + 1e-6).astype(np.float32)}
    stats[PREFIX + "residual"] = np.asarray(np.mean(_parts(t, stats)[1]) + 1e-6, np.float32)
    stats[PREFIX + "val_scores"] = np.sort(raw_scores(val_inputs, stats)).astype(np.float32)
    return stats


def _parts(t: np.ndarray, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """(squared distance in the subspace in units of spread, squared residual outside it) per row."""
    components = stats[PREFIX + "components"]
    centred = t - stats[PREFIX + "mean"]
    z = centred @ components.T
    inside = np.sum(z**2 / stats[PREFIX + "variance"], axis=1)
    residual = np.sum((centred - z @ components) ** 2, axis=1)
    return inside, residual


def raw_scores(inputs: np.ndarray, stats: dict) -> np.ndarray:
    inside, residual = _parts(thumbnails(inputs).astype(np.float64), stats)
    k = stats[PREFIX + "components"].shape[0]
    return inside / k + residual / float(stats[PREFIX + "residual"])


def has_stats(ood: dict) -> bool:
    return PREFIX + "val_scores" in ood


def percentiles(inputs: np.ndarray, ood: dict) -> np.ndarray:
    """Share of validation scans that look more ordinary than each input (0..1; near 1 = unfamiliar)."""
    ref = ood[PREFIX + "val_scores"]
    return np.searchsorted(ref, raw_scores(inputs, ood)) / len(ref)
