"""The prepare step for a run from a recipe (several sources at once, brainscan.training.sources).

Recipe -> manifest (near-duplicates confirmed by pixels across sources) -> split grouped by patient and
near-duplicate group, every source in validation and test, optionally one lgg-tcga institution held out
-> model inputs per part, with each image's source and sequence kept for the per-source figures, and
sampling weights that balance classes and, within a class, sources and sequences.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainscan.errors import DatasetError
from brainscan.scans.batch import prepare_paths
from brainscan.training import patient_split, sources
from brainscan.training.progress import log

BLANK_STD = 3.0 / 255  # a prepared input flatter than this (all-black slices) teaches nothing: left out


@dataclass
class SourceData:
    """What the prepare step of a recipe run hands on."""

    classes: list[str]
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]  # part -> (inputs, class indices)
    items: dict[str, list[sources.Item]]  # part -> the item of each input row
    weights: np.ndarray  # sampling weight of each training input
    split: dict  # summary for the card and split.json
    training_data: dict  # for the card
    files: dict[str, list[str]] = field(default_factory=dict)  # part -> paths relative to the data root

    def train_paths(self) -> list[str]:
        return [it.path for it in self.items["train"]]


def prepare_recipe(recipe_path: str, data_root: str | None, size: int, seed: int, holdout_institution: str = "",
                   max_images: int = 0) -> SourceData:
    recipe = sources.load_recipe(recipe_path, data_root or None)
    manifest = sources.build_manifest(recipe, cache_dir=Path(recipe_path).resolve().parent.parent / ".cache")
    log(f"Recipe {recipe.name}: {len(manifest)} images from {len(recipe.sources)} sources; near-duplicates: "
        f"{_pairs_line(manifest.stats)}")
    split = patient_split.grouped_split(manifest, seed=seed, holdout_institution=holdout_institution or None)
    classes = list(recipe.classes)
    rng = np.random.default_rng(seed)
    dedup = set(split.test_dedup)
    parts = {"train": split.parts["train"], "val": split.parts["val"], "test": split.parts["test"],
             "test_dedup": sorted(dedup), "institution_holdout": split.parts.get("institution_holdout", [])}
    if max_images:
        parts = {k: sorted(rng.permutation(v)[: max_images if k == "train" else max(max_images // 4, 1)].tolist())
                 for k, v in parts.items()}
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    items: dict[str, list[sources.Item]] = {}
    blank: Counter = Counter()
    unreadable = 0
    for name, idx in parts.items():
        if not idx:
            continue
        x, ok, errors = prepare_paths([manifest[i].path for i in idx], size)
        unreadable += len(errors)
        keep = x.reshape(len(x), -1).std(axis=1) > BLANK_STD
        blank[name] = int((~keep).sum())
        rows = [idx[i] for i, k in zip(ok, keep, strict=True) if k]
        arrays[name] = (x[keep], np.array([classes.index(manifest[i].label) for i in rows], np.int64))
        items[name] = [manifest[i] for i in rows]
    if "val" not in arrays or len(arrays["val"][0]) < 2 or "train" not in arrays:
        raise DatasetError("Too few images for training and validation in this recipe.")
    log(f"Inputs per part: { {k: len(v[0]) for k, v in arrays.items()} }; blank slices left out: {dict(blank)}; "
        f"unreadable: {unreadable}")
    weights = sources.sampling_weights(items["train"])
    root = recipe.data_root
    files = {k: [str(Path(it.path).relative_to(root)) for it in v] for k, v in items.items()}
    summary = {**split.summary, "inputs_per_part": {k: len(v[0]) for k, v in arrays.items()},
               "blank_slices_left_out": dict(blank), "unreadable": unreadable,
               "holdout_institution": holdout_institution or None}
    training_data = {
        "recipe": str(recipe_path), "recipe_name": recipe.name,
        "sources": {s.name: str(Path(s.path).relative_to(root)) for s in recipe.sources},
        "images": len(manifest), "counts": _cells(manifest),
        "near_duplicates": manifest.stats.get("near_duplicates", {}),
        "sampling": "each class equal weight; within a class each (source, sequence) cell equal weight, "
                    "no image above 10x its class median (brainscan.training.sources.sampling_weights)",
    }
    return SourceData(classes, arrays, items, weights, summary, training_data, files)


def _cells(items) -> dict:
    out: dict = {}
    for it in items:
        out.setdefault(it.source, Counter())[f"{it.label}/{it.sequence}"] += 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _pairs_line(stats: dict) -> str:
    nd = stats.get("near_duplicates", {})
    return (f"{sum(nd.get('proposed', {}).values())} pairs across sources or patients proposed by the hash, "
            f"{sum(nd.get('confirmed', {}).values())} confirmed by pixels")


def breakdown(items: list[sources.Item], y: np.ndarray, probs: np.ndarray, classes: list[str],
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
