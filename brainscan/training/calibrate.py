"""Calibration and the unfamiliar-scan reference, fitted on data the weights never saw: temperature
scaling, the feature statistics of the Mahalanobis check, and refitting the pixel check of a folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from brainscan.modelfolder import CARD_FILE, OOD_FILE, read_json, write_json, write_markdown
from brainscan.runtime import familiarity
from brainscan.runtime.inference import OOD_THRESHOLD, load_model, predict_batch, softmax
from brainscan.scans.batch import prepare_paths


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood on held-out data (Guo et al., 2017)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=int)

    def nll(log_t: float) -> float:
        p = softmax(logits, float(np.exp(log_t)))
        return float(-np.mean(np.log(p[np.arange(len(labels)), labels] + 1e-12)))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def ood_stats(features: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Class means and a shared precision matrix of the penultimate features (Mahalanobis OOD)."""
    means = np.stack([features[labels == c].mean(axis=0) for c in range(n_classes)])
    centred = features - means[labels]
    cov = centred.T @ centred / max(len(features) - 1, 1)
    cov += np.eye(cov.shape[0]) * 1e-3 * np.trace(cov) / cov.shape[0]  # shrinkage: features outnumber samples
    return {"means": means.astype(np.float32), "precision": np.linalg.inv(cov).astype(np.float32)}


def refit_model_folder(model_dir: str, data_dir: str) -> dict:
    """Fit the pixel check for an existing model folder from the train/val files its split.json lists
    (found under data_dir), store it in ood.npz, and report how often scans of its deduplicated test
    split are flagged (combined with the feature check)."""
    folder = Path(model_dir)
    files = read_json(folder / "split.json")["files"]
    model = load_model(folder)
    arrays = {part: prepare_paths([os.path.join(data_dir, f) for f in files[part]], model.size)[0]
              for part in ("train", "val", "test_dedup")}
    ood_path = folder / OOD_FILE
    ood = {k: v for k, v in model.ood.items() if not k.startswith(familiarity.PREFIX)}
    ood.update(familiarity.fit(arrays["train"], arrays["val"]))
    tmp = folder / ".ood-new.npz"
    np.savez(tmp, **ood)
    os.replace(tmp, ood_path)
    model.ood = ood
    test = arrays["test_dedup"]
    flagged = [p.out_of_distribution for p in predict_batch(model, test)]
    pixel_only = familiarity.percentiles(test, ood) >= OOD_THRESHOLD
    report = {"train": len(arrays["train"]), "val": len(arrays["val"]), "test_dedup": len(test),
              "test_dedup_flagged": float(np.mean(flagged)),
              "test_dedup_flagged_pixel_check": float(np.mean(pixel_only))}
    card = read_json(folder / CARD_FILE)
    card["unfamiliar_check"] = familiarity.UNFAMILIAR_CHECK
    card.setdefault("scores", {}).setdefault("test_dedup", {})["flagged_unfamiliar"] = report["test_dedup_flagged"]
    write_json(folder / CARD_FILE, card)
    write_markdown(folder)
    return report
