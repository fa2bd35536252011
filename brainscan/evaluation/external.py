"""Evaluation on data from other sources: BRATS slices (per sequence, pointing game) and yes/no sets.

These are the figures that say whether the model learned tumors or only its training set's look.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from brainscan.cam import methods as cam_methods
from brainscan.evaluation.metrics import binary_metrics
from brainscan.evaluation.pointing import PointingTally
from brainscan.modelfolder import write_json
from brainscan.runtime.inference import predict, run_model
from brainscan.scans import datasets as data_mod
from brainscan.scans.batch import load_gray, prepare_paths
from brainscan.scans.preprocess import prepare


def _threshold(model) -> float:
    """The model's operating threshold for "tumor" (older cards: 0.5)."""
    t = getattr(model, "tumor_threshold", None)
    return 0.5 if t is None else float(t)


def evaluate_brats(root: str, model, cam_method: str = "gradcam", max_per_sequence: int = 0,
                   patients: list[str] | None = None, upside_down: bool = False) -> dict:
    """Tumor vs tumor-free per sequence, by patient, at the operating threshold, and the Grad-CAM pointing
    game on tumor slices (brainscan.evaluation.pointing). With patients, only those patients' slices count
    (the held-out ones when others were trained on). With upside_down, every slice and its outline are
    turned upside down first: BRATS slices are stored with the back of the head at the top, the other sets
    with the front, so the pair of results shows how much the answer depends on which way up a scan is."""
    root_path = Path(root)
    with open(root_path / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if patients:
        unknown = sorted(set(patients) - {r["patient"] for r in rows})
        if unknown:
            raise data_mod.DatasetError(f"No slices of patient(s) {', '.join(unknown)} in {root}.")
        rows = [r for r in rows if r["patient"] in patients]
    threshold = _threshold(model)
    out: dict = {"data": str(root_path), "cam_method": cam_method, "threshold": threshold, "sequences": {},
                 "upside_down": upside_down, **({"patients": sorted(set(patients))} if patients else {})}
    turn = (lambda a: np.ascontiguousarray(a[::-1])) if upside_down else (lambda a: a)  # noqa: E731
    for seq in sorted({r["sequence"] for r in rows}):
        subset = [r for r in rows if r["sequence"] == seq]
        if max_per_sequence:
            subset = subset[:max_per_sequence]
        y, p, slice_patients, flagged = [], [], [], []
        tally = PointingTally()
        for r in subset:
            img = turn(load_gray(str(root_path / r["image"])))
            prepared = prepare(img, model.size)
            pred = predict(model, prepared.input)
            y.append(int(r["label"] == "tumor"))
            p.append(pred.tumor_probability)
            flagged.append(pred.out_of_distribution)
            slice_patients.append(r["patient"])
            if r["label"] == "tumor":
                mask = turn(load_gray(str(root_path / r["mask_wt"]))) > 0.5
                tally.add(model, img, prepared, pred, mask, cam_method)
        y_arr, p_arr = np.array(y), np.array(p)
        m = binary_metrics(y_arr, p_arr, threshold)
        m["pointing_game"] = tally.summary()
        per_patient = {}
        for pat in sorted(set(slice_patients)):
            idx = [i for i, q in enumerate(slice_patients) if q == pat]
            if len(set(y_arr[idx].tolist())) == 2:
                per_patient[pat] = binary_metrics(y_arr[idx], p_arr[idx])["roc_auc"]
        m["roc_auc_per_patient"] = per_patient
        m["flagged_unfamiliar"] = float(np.mean(flagged))
        out["sequences"][seq] = m
    return out


def near_duplicates_of(paths: list[str], against: list[str], min_correlation: float = 0.95,
                       cache_dir: str | Path | None = None) -> dict:
    """Which of paths have a near-duplicate among the reference images: a pHash within NEAR_DUPLICATE_BITS
    proposes a pair, and it counts when the 64x64 pixels correlate at min_correlation or more (a hash alone
    over-matches MRI slices). The reference images' hashes and thumbnails come from the recipe's cache when
    cache_dir names it (scans.near_duplicates.HashCache). Returns {"by_hash": mask, "confirmed": mask}."""
    from brainscan.scans.near_duplicates import (
        NEAR_DUPLICATE_BITS,
        HashCache,
        cached_hashes,
        cached_thumbs,
        hamming_matrix_min,
        hash_all,
        pixel_correlation,
        thumbnail,
    )

    cache = HashCache(cache_dir)
    best, nearest = hamming_matrix_min(hash_all(paths), cached_hashes(against, cache))
    by_hash = best <= NEAR_DUPLICATE_BITS
    partners = cached_thumbs(against, [int(nearest[i]) for i in np.flatnonzero(by_hash)], cache)
    confirmed = np.zeros(len(paths), bool)
    for i in np.flatnonzero(by_hash):
        confirmed[i] = pixel_correlation(thumbnail(paths[i]), partners[int(nearest[i])]) >= min_correlation
    cache.save()
    return {"by_hash": by_hash, "confirmed": confirmed}


def yes_no_without_duplicates(root: str, dedup_against: list[str] | str | None,
                              cache_dir: str | Path | None = None) -> dict:
    """The yes/no images (paths, labels) that near-duplicate none of the training folders given (pHash
    proposes, pixels confirm), with both counts; used by `external` and `uncertainty` alike."""
    ds = data_mod.discover(root)
    paths = [it.path for it in ds.items]
    folders = [dedup_against] if isinstance(dedup_against, str) else list(dedup_against or [])
    keep = np.ones(len(paths), bool)
    by_hash = 0
    if folders:
        ref = [it.path for f in folders for it in data_mod.discover(f, min_classes=1).items]
        dup = near_duplicates_of(paths, ref, cache_dir=cache_dir)
        keep = ~dup["confirmed"]
        by_hash = int(dup["by_hash"].sum())
    return {"paths": [p for p, k in zip(paths, keep, strict=True) if k],
            "labels": [it.label for it, k in zip(ds.items, keep, strict=True) if k],
            "images": len(paths), "removed": int((~keep).sum()), "proposed_by_hash_only": by_hash,
            "folders": folders}


def evaluate_yes_no(root: str, model, dedup_against: list[str] | str | None = None,
                    cache_dir: str | Path | None = None) -> dict:
    """Binary accuracy/F1/AUC on a yes/no folder at the operating threshold, without the images that
    near-duplicate any training folder given (pHash proposes, pixels confirm; both counts reported)."""
    kept_set = yes_no_without_duplicates(root, dedup_against, cache_dir)
    info = {"data": root, "images": kept_set["images"], "removed_near_duplicates_of_training": kept_set["removed"],
            "proposed_by_hash_only": kept_set["proposed_by_hash_only"], "dedup_against": kept_set["folders"]}
    kept, labels = kept_set["paths"], kept_set["labels"]
    if not kept:
        return {**info, "n": 0, "message": "Every image is a near-duplicate of the training data."}
    inputs, ok, errors = prepare_paths(kept, model.size)
    preds = run_model(model, inputs)
    y = np.array([labels[i] != "notumor" for i in ok], int)
    m = binary_metrics(y, np.array([pr.tumor_probability for pr in preds]), _threshold(model))
    m["flagged_unfamiliar"] = float(np.mean([pr.out_of_distribution for pr in preds]))
    m.update(info, unreadable=len(errors), threshold=_threshold(model))
    return m


def attach_to_model(model_dir: str, external: dict) -> None:
    """Store external.json and a summary in card.json (atomic rewrites). Sets not evaluated this time
    keep their earlier results, so `external --brats` alone does not erase a yes/no evaluation."""
    folder = Path(model_dir)
    earlier = folder / "external.json"
    external = {**(json.loads(earlier.read_text()) if earlier.is_file() else {}), **external}
    write_json(folder / "external.json", external)
    card = json.loads((folder / "card.json").read_text())
    summary = {}
    for block, suffix in (("brats", ""), ("brats_upside_down", "_upside_down")):
        for seq, m in external.get(block, {}).get("sequences", {}).items():
            summary[f"brats_{seq}{suffix}"] = _brats_summary(m)
    if "yes_no" in external:
        m = external["yes_no"]
        summary["yes_no_dedup"] = {"n": m["n"], "accuracy": m.get("accuracy"), "f1": m.get("f1"),
                                   "tumor_roc_auc": m.get("roc_auc"),
                                   "removed_near_duplicates": m["removed_near_duplicates_of_training"],
                                   "flagged_unfamiliar": m.get("flagged_unfamiliar")}
    for part, seqs in external.get("outlined_slices", {}).get("parts", {}).items():
        for seq, pg in seqs.items():
            summary[f"lgg_{part}_{seq}_pointing"] = {
                "n": pg["n"], "pointing_game_hit_rate": pg["hit_rate"],
                "pointing_baseline_brightest": pg.get("baseline_brightest_point"),
                "pointing_baseline_random": pg.get("baseline_random_point_in_head"),
                "heatmap_fell_back": pg.get("fell_back")}
    for part, groups in external.get("outlined_classes", {}).get("parts", {}).items():
        for cls, pg in groups.items():  # brain-tumor-mri, per tumour class (brain-tumor-mri-masks)
            summary[f"btm_{part}_{cls}_pointing"] = {
                "n": pg["n"], "pointing_game_hit_rate": pg["hit_rate"],
                "pointing_baseline_brightest": pg.get("baseline_brightest_point"),
                "pointing_baseline_random": pg.get("baseline_random_point_in_head"),
                "heatmap_fell_back": pg.get("fell_back")}
    card["external"] = summary
    method = external.get("brats", external.get("outlined_slices", {})).get("cam_method")
    if method:
        when_empty = cam_methods.get(method).when_empty
        card["pointing_heatmap"] = {"method": method, "label": cam_methods.CAM_LABELS[method],
                                    "when_empty": when_empty,
                                    "when_empty_label": cam_methods.CAM_LABELS.get(when_empty or "")}
    card["limitations"] = measured_limitations(summary)
    write_json(folder / "card.json", card)


def _brats_summary(m: dict) -> dict:
    pg = m["pointing_game"]
    return {"n": m["n"], "tumor_roc_auc": m.get("roc_auc"), "sensitivity": m.get("sensitivity"),
            "specificity": m.get("specificity"), "pointing_game_hit_rate": pg["hit_rate"],
            "pointing_baseline_brightest": pg.get("baseline_brightest_point"),
            "pointing_baseline_random": pg.get("baseline_random_point_in_head"),
            "empty_heatmap": pg.get("empty_heatmap"), "heatmap_fell_back": pg.get("fell_back"),
            "flagged_unfamiliar": m["flagged_unfamiliar"]}


def measured_limitations(summary: dict) -> list[str]:
    """Plain sentences built from the measured external figures (no figure is typed by hand)."""
    out = ["Meningioma and pituitary tumors are learned from one collection only (brain-tumor-mri, mostly contrast "
           "T1), so those two answers rest on that collection's look; glioma and no-tumor come from several."]
    for key, seq in (("brats_flair", "FLAIR"), ("brats_t1c", "contrast T1")):
        m = summary.get(key) or {}
        turned = (summary.get(key + "_upside_down") or {}).get("tumor_roc_auc")
        if m.get("tumor_roc_auc") is not None and turned is not None and abs(turned - m["tumor_roc_auc"]) >= 0.05:
            out.append(f"The answer depends on which way up a slice is: on BRATS {seq} slices ROC AUC is "
                       f"{m['tumor_roc_auc']:.2f} as stored (back of the head at the top) and {turned:.2f} turned "
                       "upside down.")
        if m and (m.get("tumor_roc_auc") or 0) < 0.9:
            out.append(f"On BRATS {seq} slices (another source, skull-stripped) tumor vs tumor-free ROC AUC is "
                       f"{m['tumor_roc_auc']:.2f} and the heatmap peak lands in the tumor on "
                       f"{100 * (m.get('pointing_game_hit_rate') or 0):.0f}% of tumor slices: do not rely on it for "
                       "scans unlike its training data.")
    yn = summary.get("yes_no_dedup")
    if yn and yn.get("accuracy") is not None and yn["accuracy"] < 0.887:
        out.append(f"On the navoneel yes/no set without its near-duplicates of the training data, accuracy is "
                   f"{100 * yn['accuracy']:.1f}% (n={yn['n']}), below the 88.7% published for a model trained on it.")
    flagged = [m.get("flagged_unfamiliar") for m in summary.values() if m.get("flagged_unfamiliar") is not None]
    if flagged:
        out.append(f"The unfamiliar-scan warning fires on only {100 * min(flagged):.0f}-{100 * max(flagged):.0f}% of "
                   "these other-source scans, so its silence is no guarantee.")
    return out
