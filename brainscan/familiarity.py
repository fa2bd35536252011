"""How much a prepared scan looks like the training images, in pixel space. NumPy only.

The network's own features (Mahalanobis distance in brainscan.inference) say little about scans
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


def refit_model_folder(model_dir: str, data_dir: str) -> dict:
    """Fit the pixel check for an existing model folder from the train/val files its split.json lists
    (found under data_dir), store it in ood.npz, and report how often scans of its deduplicated test
    split are flagged (combined with the feature check)."""
    import os
    from pathlib import Path

    from brainscan.card import write_markdown
    from brainscan.inference import OOD_THRESHOLD, load_model, predict_batch
    from brainscan.jsonio import read_json, write_json
    from brainscan.pipeline import prepare_paths
    from brainscan.train import UNFAMILIAR_CHECK

    folder = Path(model_dir)
    files = read_json(folder / "split.json")["files"]
    model = load_model(folder)
    arrays = {part: prepare_paths([os.path.join(data_dir, f) for f in files[part]], model.size)[0]
              for part in ("train", "val", "test_dedup")}
    ood_path = folder / "ood.npz"
    ood = {k: v for k, v in model.ood.items() if not k.startswith(PREFIX)}
    ood.update(fit(arrays["train"], arrays["val"]))
    tmp = folder / ".ood-new.npz"
    np.savez(tmp, **ood)
    os.replace(tmp, ood_path)
    model.ood = ood
    test = arrays["test_dedup"]
    flagged = [p.out_of_distribution for p in predict_batch(model, test)]
    pixel_only = percentiles(test, ood) >= OOD_THRESHOLD
    report = {"train": len(arrays["train"]), "val": len(arrays["val"]), "test_dedup": len(test),
              "test_dedup_flagged": float(np.mean(flagged)),
              "test_dedup_flagged_pixel_check": float(np.mean(pixel_only))}
    card = read_json(folder / "card.json")
    card["unfamiliar_check"] = UNFAMILIAR_CHECK
    card.setdefault("scores", {}).setdefault("test_dedup", {})["flagged_unfamiliar"] = report["test_dedup_flagged"]
    write_json(folder / "card.json", card)
    write_markdown(folder)
    return report
