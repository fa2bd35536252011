"""The prepare step of a training run, one path for a dataset folder and a recipe. No TensorFlow here.

recipe (``--recipe``, brainscan.scans.recipe; a folder ``--data DIR`` is wrapped as a one-source recipe first)
-> manifest (brainscan.scans.manifest: near-duplicates; across sources or patients only when the pixels agree)
-> split (brainscan.scans.split; split.json) -> model inputs per part, each row with its manifest item
-> sampling weights (brainscan.training.sampling) -> what the model card says about the data and the split.

A dataset folder keeps what the Train page's folder runs have always done: unreadable files are left out
(listed in the log), the split deals near-duplicate groups per class with the run's validation and test
fractions, ``--max-images`` keeps the class balance, split.json lists the split before the inputs are made,
``--extra-train`` and ``--lesions`` are allowed, and training shuffles epochs with class weights in the loss.
A recipe leaves blank slices out, draws balanced batches by the sampling weights, can hold out an institution
and guide the CAMs with tumour outlines (``--guide-cams``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainscan.config import TrainConfig
from brainscan.errors import DatasetError
from brainscan.modelfolder import write_json
from brainscan.scans import datasets
from brainscan.scans.batch import prepare_paths
from brainscan.scans.manifest import Item, Manifest, build_manifest
from brainscan.scans.near_duplicates import NEAR_DUPLICATE_BITS, hamming_matrix_min, hash_all
from brainscan.scans.recipe import SEQUENCES, Recipe, folder_recipe, load_recipe
from brainscan.scans.split import Split, cell_key, split_manifest
from brainscan.training.progress import log
from brainscan.training.sampling import sampling_weights

BLANK_STD = 3.0 / 255  # a prepared input flatter than this (all-black slices) teaches nothing: left out (recipes)


@dataclass(frozen=True)
class Guidance:
    """Guided runs (``--guide-cams``): the tumour outline (uint8) of each training input and whether it is known
    (brainscan.training.guidance.mask_targets)."""

    masks: np.ndarray
    has_mask: np.ndarray


@dataclass
class Prepared:
    """What the prepare step hands on, for a dataset folder (a one-source recipe) and a recipe alike."""

    recipe: Recipe
    classes: list[str]
    split: dict  # the split's summary: split.json, metrics.json and the card
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]  # part -> (inputs, class indices)
    items: dict[str, list[Item]]  # part -> the manifest item of each input row (--extra-train rows have none)
    weights: np.ndarray  # sampling weight of each training item (a recipe run draws its batches by them)
    card: dict  # the model card's "training_data" and "split"
    x_strip: np.ndarray | None = None  # skull-stripped copies of the training inputs (cfg.stripped), or None
    guidance: Guidance | None = None  # guided runs only
    cam_map_size: tuple[int, int] = (0, 0)  # guided runs: the feature map's size (set when the model is built)

    @property
    def folder(self) -> bool:
        """A dataset folder: epochs are shuffled with class weights in the loss and metrics have no per-source
        figures; a recipe draws balanced batches by ``weights`` and reports every source and sequence."""
        return self.recipe.folder


def prepare(cfg: TrainConfig, run_dir: Path) -> Prepared:
    """Recipe (or folder) -> manifest -> split (split.json) -> model inputs per part."""
    recipe, man = _manifest(cfg)
    split = split_manifest(recipe, man, seed=cfg.seed, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                           holdout_institution=cfg.holdout_institution or None)
    classes = list(recipe.classes)
    rng = np.random.default_rng(cfg.seed)
    if recipe.folder:
        log(f"Split (near-duplicate groups kept together): {split.summary}")
        parts = _capped_by_class(split.inputs, man, cfg.max_images, rng)
        write_json(run_dir / "split.json", {"summary": split.summary, "files": _files(recipe, man, parts)})
    else:
        parts = _only_sequences(_capped(split.inputs, cfg.max_images, rng), man, cfg.train_sequences)
    arrays, items, figures = _inputs(man, parts, classes, cfg.img_size, drop_blank=not recipe.folder)
    if recipe.folder:
        summary = split.summary
    else:
        if "val" not in arrays or len(arrays["val"][0]) < 2 or "train" not in arrays:
            raise DatasetError("Too few images for training and validation in this recipe.")
        log(f"Inputs per part: { {k: len(v[0]) for k, v in arrays.items()} }; blank slices left out: "
            f"{figures['blank']}; unreadable: {figures['unreadable']}")
        summary = {**split.summary, "inputs_per_part": {k: len(v[0]) for k, v in arrays.items()},
                   "blank_slices_left_out": figures["blank"], "unreadable": figures["unreadable"],
                   "holdout_institution": cfg.holdout_institution or None}
        write_json(run_dir / "split.json", {"summary": summary, "files": _files(recipe, man, items)})
    data = Prepared(recipe, classes, summary, arrays, items, sampling_weights(items.get("train", [])),
                    _card(cfg, recipe, man, summary))
    depths = None
    if cfg.stripped > 0 and "train" in arrays:
        # A folder run draws the peel depths after its caps, from the same generator; a recipe run from a fresh one.
        depth_rng = rng if recipe.folder else np.random.default_rng(cfg.seed)
        paths = [man[i].path for i in parts["train"]] if recipe.folder else [it.path for it in items["train"]]
        depths = strip_depths(len(paths), depth_rng)
        data.x_strip = stripped_copies(cfg, paths, len(arrays["train"][0]), depths)
    if cfg.guide_cams > 0 and not recipe.folder:
        data.guidance = _guidance(cfg, items["train"], depths if data.x_strip is not None else None)
    if cfg.extra_train and "train" in arrays:
        held_out = np.concatenate([parts[k] for k in ("val", "test_dedup", "official_test")])  # a folder run
        x_ex, y_ex, extra_info = extra_training_images(cfg.extra_train, classes, man.hashes[held_out], cfg.img_size)
        arrays["train"] = (np.concatenate([arrays["train"][0], x_ex]), np.concatenate([arrays["train"][1], y_ex]))
        if data.x_strip is not None:
            data.x_strip = np.concatenate([data.x_strip, x_ex])  # extra images are shown as they are in both views
        data.card["training_data"]["extra_training_images"] = extra_info
        log(f"Extra training images from {cfg.extra_train}: {extra_info}")
    if "val" not in arrays or len(arrays["val"][0]) < 2:
        raise DatasetError("Too few images for a validation split; add images or lower the split.")
    return data


def _manifest(cfg: TrainConfig) -> tuple[Recipe, Manifest]:
    """The recipe of the run (a folder wrapped as a one-source recipe) and its manifest."""
    if cfg.recipe:
        for option, value in (("--extra-train", cfg.extra_train), ("--lesions", cfg.lesions)):
            if value:
                raise DatasetError(f"{option} is for folder runs; a recipe lists every source itself.")
        recipe = load_recipe(cfg.recipe, cfg.data or None)
        man = build_manifest(recipe, cache_dir=Path(cfg.recipe).resolve().parent.parent / ".cache")
        log(f"Recipe {recipe.name}: {len(man)} images from {len(recipe.sources)} sources; near-duplicates: "
            f"{_pairs_line(man.stats)}")
        return recipe, man
    ds = datasets.discover(cfg.data)
    log(f"Dataset {cfg.data}: {len(ds.items)} images, classes {ds.counts()}")
    recipe = folder_recipe(ds)
    man = build_manifest(recipe)
    if man.unreadable:
        for path, reason in man.unreadable[:20]:
            log(f"Skipped {os.path.relpath(path, cfg.data)}: {reason}")
        log(f"{len(man.unreadable)} file(s) could not be read and are left out.")
        if len({it.label for it in man}) < 2:
            raise DatasetError("Too few readable images are left after skipping unreadable files.")
    return recipe, man


def _capped_by_class(parts: dict[str, list[int]], man: Manifest, cap: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A folder's --max-images: at most cap training images and cap // 4 of each other part, classes balanced."""
    labels = [it.label for it in man]
    out = {}
    for name, idx in parts.items():
        n = cap if name == "train" else cap // 4 if cap else 0
        out[name] = _cap(np.asarray(idx, dtype=np.int64), labels, n, rng)
    return out


def _cap(indices: np.ndarray, labels: list[str], cap: int, rng: np.random.Generator) -> np.ndarray:
    if not cap or len(indices) <= cap:
        return indices
    keep = []
    classes = sorted({labels[i] for i in indices})
    for c in classes:
        idx = [i for i in indices if labels[i] == c]
        keep.extend(rng.permutation(idx)[: max(1, cap // len(classes))])
    return np.array(sorted(keep), dtype=np.int64)


def _capped(parts: dict[str, list[int]], cap: int, rng: np.random.Generator) -> dict[str, list[int]]:
    """A recipe's --max-images: a random cap training images and cap // 4 (at least 1) of each other part."""
    if not cap:
        return dict(parts)
    return {k: sorted(rng.permutation(v)[: cap if k == "train" else max(cap // 4, 1)].tolist())
            for k, v in parts.items()}


def _only_sequences(parts: dict[str, list[int]], man: Manifest, sequences: str) -> dict[str, list[int]]:
    """``--train-sequences``: training and validation keep only these sequences (a model that knows a class on
    one sequence alone); every held-out part keeps them all, so the model is scored on the sequences it never
    saw."""
    wanted = {s.strip().lower() for s in sequences.split(",") if s.strip()}
    if not wanted:
        return parts
    unknown = wanted - set(SEQUENCES)
    if unknown:
        raise DatasetError(f"--train-sequences: {', '.join(sorted(unknown))} is not one of {', '.join(SEQUENCES)}.")
    kept = {k: [i for i in v if man[i].sequence in wanted] if k in ("train", "val") else v for k, v in parts.items()}
    log(f"Training and validation on {', '.join(sorted(wanted))} only: {len(kept['train'])} of "
        f"{len(parts['train'])} training and {len(kept['val'])} of {len(parts['val'])} validation images kept")
    return kept


def _inputs(man: Manifest, parts: dict, classes: list[str], size: int,
            drop_blank: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, list[Item]], dict]:
    """Model inputs of every non-empty part and the manifest item of each row. A file that cannot be prepared
    is left out (a folder logs each one); drop_blank leaves out blank slices (recipes)."""
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    items: dict[str, list[Item]] = {}
    blank: Counter = Counter()
    unreadable = 0
    for name, idx in parts.items():
        if len(idx) == 0:
            continue
        x, ok, errors = prepare_paths([man[i].path for i in idx], size)
        unreadable += len(errors)
        if not drop_blank:
            for i, e in errors.items():
                log(f"Skipped {man[idx[i]].path}: {e}")
        rows = [idx[i] for i in ok]
        if drop_blank:
            keep = x.reshape(len(x), -1).std(axis=1) > BLANK_STD
            blank[name] = int((~keep).sum())
            x, rows = x[keep], [r for r, k in zip(rows, keep, strict=True) if k]
        arrays[name] = (x, np.array([classes.index(man[i].label) for i in rows], np.int64))
        items[name] = [man[i] for i in rows]
    return arrays, items, {"blank": dict(blank), "unreadable": unreadable}


def _files(recipe: Recipe, man: Manifest, parts: dict) -> dict[str, list[str]]:
    """split.json's files: part -> paths relative to the data root (a folder: the folder)."""
    root = recipe.data_root
    if recipe.folder:
        return {k: [os.path.relpath(man[i].path, root) for i in v] for k, v in parts.items()}
    return {k: [str(Path(it.path).relative_to(root)) for it in v] for k, v in parts.items()}


def _card(cfg: TrainConfig, recipe: Recipe, man: Manifest, summary: dict) -> dict:
    """What the model card says about the training data and the split."""
    if recipe.folder:
        counts = Counter(it.label for it in man)
        training_data = {"folder": os.path.abspath(cfg.data), "images": len(man),
                         "counts": {k: counts.get(k, 0) for k in recipe.classes}}
        method = (f"near-duplicate groups (pHash Hamming <= {NEAR_DUPLICATE_BITS}) kept on one side; official "
                  "Testing images whose group touches Training excluded from test_dedup")
        return {"training_data": training_data, "split": {"method": method, **summary, "seed": cfg.seed}}
    root = recipe.data_root
    training_data = {
        "recipe": str(cfg.recipe), "recipe_name": recipe.name,
        "sources": {s.name: str(Path(s.path).relative_to(root)) for s in recipe.sources},
        "images": len(man), "counts": _cells(man),
        "near_duplicates": man.stats.get("near_duplicates", {}),
        "sampling": "each class equal weight; within a class each (source, sequence) cell equal weight, "
                    "no image above 10x its class median (brainscan.training.sampling.sampling_weights)",
    }
    method = ("grouped by patient (lgg-tcga case, ms-ljubljana patient, IXI subject) and by near-duplicate group "
              "(pHash Hamming <= 6; across sources or patients only when the pixels correlate); every source in "
              "validation and test; brain-tumor-mri's official Testing images without a near-duplicate in its "
              "Training are test_dedup")
    return {"training_data": training_data, "split": {"method": method, **summary, "seed": cfg.seed}}


def _cells(items) -> dict:
    out: dict = {}
    for it in items:
        out.setdefault(it.source, Counter())[f"{it.label}/{it.sequence}"] += 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _pairs_line(stats: dict) -> str:
    nd = stats.get("near_duplicates", {})
    return (f"{sum(nd.get('proposed', {}).values())} pairs across sources or patients proposed by the hash, "
            f"{sum(nd.get('confirmed', {}).values())} confirmed by pixels")


def _guidance(cfg: TrainConfig, train: list[Item], depths: np.ndarray | None) -> Guidance:
    from brainscan.training.guidance import mask_targets

    # Outlines for the stripped copies too (2 x N x S x S), so stripped tumour views are guided as well.
    masks, has_mask = mask_targets(train, cfg.img_size, strip_depths=depths)
    log(f"Guided CAMs: {int(has_mask.sum())} of {len(has_mask)} training inputs have a known outline "
        f"({sum(1 for it in train if it.mask)} with a tumour)"
        + (", in the plain and the skull-stripped view" if masks.ndim == 4 else ""))
    return Guidance(masks, has_mask)


def strip_depths(n: int, rng: np.random.Generator) -> np.ndarray:
    """The peel depth of each training image's skull-stripped copy (preprocess.strip_skull)."""
    return rng.uniform(0.10, 0.22, n)


def stripped_copies(cfg: TrainConfig, paths: list[str], expected: int, depths: np.ndarray) -> np.ndarray | None:
    """A second, skull-stripped and re-cropped copy of every training image (peel depth per image);
    each epoch shows it instead of the original with probability cfg.stripped."""
    x_strip, ok_strip, _ = prepare_paths(paths, cfg.img_size, strip_depths=depths)
    if len(ok_strip) != expected:
        log("Skull-stripped copies unavailable for some images; training without them.")
        return None  # a file that fails only when stripped: keep it simple and skip the option
    return x_strip


def extra_training_images(folder: str, classes: list[str], evaluation_hashes: np.ndarray,
                          size: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Images from another source for the training part only. Their classes must be among the run's,
    and any image near-duplicating a validation or test image is dropped so the split stays leak-free."""
    extra = datasets.discover(folder, min_classes=1)
    unknown = sorted(set(extra.classes) - set(classes))
    if unknown:
        raise DatasetError(f"The extra training folder {folder} has classes {unknown} that the training "
                           f"data does not have ({', '.join(classes)}).")
    paths = [it.path for it in extra.items]
    nearest = (hamming_matrix_min(hash_all(paths), evaluation_hashes)[0]
               if len(evaluation_hashes) else np.full(len(paths), 64))
    keep = [i for i in range(len(paths)) if nearest[i] > NEAR_DUPLICATE_BITS]
    x, ok, _ = prepare_paths([paths[i] for i in keep], size)
    y = np.array([classes.index(extra.items[keep[i]].label) for i in ok], dtype=np.int64)
    info = {"folder": os.path.abspath(folder), "images": len(ok),
            "counts": {c: int(np.sum(y == classes.index(c))) for c in extra.classes},
            "dropped_near_duplicates_of_evaluation_images": len(paths) - len(keep)}
    return x, y, info


# --- figures without training: python -m brainscan.training.prepare RECIPE -------------------------

def report(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    """The manifest and split figures of a recipe (and the split.json files it would write), without training."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m brainscan.training.prepare",
                                 description="Manifest and split figures of a recipe, without training.")
    ap.add_argument("recipe")
    ap.add_argument("--data-root")
    ap.add_argument("--cache-dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout", action="append", default=[], help="institution to hold out (repeatable runs)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--split-json", help="write the split's parts here (paths relative to the data root, "
                                         "before blank slices are left out), for the first hold-out given")
    args = ap.parse_args(argv)
    recipe = load_recipe(args.recipe, args.data_root)
    t0 = time.perf_counter()
    man = build_manifest(recipe, cache_dir=args.cache_dir, workers=args.workers)
    out(f"manifest: {len(man)} items in {time.perf_counter() - t0:.1f}s")
    out(json.dumps(man.stats, indent=1))
    out(json.dumps(dict(sorted(Counter(cell_key(it) for it in man).items())), indent=1))
    splits: dict[str | None, Split] = {}
    for hold in [None, *args.holdout]:
        sp = splits[hold] = split_manifest(recipe, man, seed=args.seed, holdout_institution=hold)
        s = sp.summary
        out(f"\n## seed {args.seed}, holdout_institution={hold}")
        out(json.dumps({k: s[k] for k in ("items", "by_source", "groups", "cells_missing",
                                          "official_test_with_near_duplicate_in_training")}, indent=1))
        out(sp.table())
    w = sampling_weights([man[i] for i in splits[None].parts["train"]])
    out(f"\nweights (train, no holdout): min {w.min():.3f} median {np.median(w):.3f} max {w.max():.3f}")
    if args.split_json:
        sp = splits[args.holdout[0] if args.holdout else None]
        root = recipe.data_root
        files = {k: [str(Path(man[i].path).relative_to(root)) for i in v] for k, v in sp.inputs.items()}
        Path(args.split_json).write_text(json.dumps({"summary": sp.summary, "files": files}))


if __name__ == "__main__":
    report(sys.argv[1:])
