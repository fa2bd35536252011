"""Evaluation on data from other sources: BRATS slices (per sequence, pointing game) and yes/no sets.

These are the figures that say whether the model learned tumors or only its training set's look.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from brainscan.evaluation.metrics import binary_metrics
from brainscan.modelfolder import write_json
from brainscan.scans import datasets as data_mod
from brainscan.scans.batch import load_gray
from brainscan.scans.preprocess import prepare

POINTING_TOLERANCE_PX = 8  # a peak this close to the mask also counts in the tolerant variant


def _tumor_class(probabilities: dict[str, float]) -> str:
    """The most likely tumor class: the one whose evidence the heatmap should show."""
    return max((c for c in probabilities if c != "notumor"), key=lambda c: probabilities[c])


def brightest_point(img: np.ndarray) -> tuple[int, int]:
    """(x, y) of the brightest spot after a 5 px Gaussian blur: a model-free pointing baseline (lesions
    are bright on FLAIR), so a heatmap's hit rate can be read against it."""
    blurred = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 5)
    y, x = np.unravel_index(int(blurred.argmax()), blurred.shape)
    return int(x), int(y)


def evaluate_brats(root: str, model, cam_method: str = "gradcam", max_per_sequence: int = 0,
                   patients: list[str] | None = None) -> dict:
    """Tumor vs tumor-free per sequence, by patient, and the Grad-CAM pointing game on tumor slices.
    With patients, only those patients' slices count (the held-out ones when others were trained on)."""
    from brainscan.cam.heatmap import heatmap
    from brainscan.runtime.inference import predict

    root_path = Path(root)
    with open(root_path / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if patients:
        unknown = sorted(set(patients) - {r["patient"] for r in rows})
        if unknown:
            raise data_mod.DatasetError(f"No slices of patient(s) {', '.join(unknown)} in {root}.")
        rows = [r for r in rows if r["patient"] in patients]
    out: dict = {"data": str(root_path), "cam_method": cam_method, "sequences": {},
                 **({"patients": sorted(set(patients))} if patients else {})}
    for seq in sorted({r["sequence"] for r in rows}):
        subset = [r for r in rows if r["sequence"] == seq]
        if max_per_sequence:
            subset = subset[:max_per_sequence]
        y, p, hits, hits_tol, slice_patients, flagged, bright_hits = [], [], [], [], [], [], []
        for r in subset:
            img = load_gray(str(root_path / r["image"]))
            prepared = prepare(img, model.size)
            pred = predict(model, prepared.input)
            y.append(int(r["label"] == "tumor"))
            p.append(pred.tumor_probability)
            flagged.append(pred.out_of_distribution)
            slice_patients.append(r["patient"])
            if r["label"] == "tumor":
                mask = cv2.imread(str(root_path / r["mask_wt"]), cv2.IMREAD_GRAYSCALE) > 0
                k = model.classes.index(_tumor_class(pred.probabilities))
                x0, y0 = heatmap(model, prepared, k, cam_method).peak
                hits.append(bool(mask[y0, x0]))
                dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
                hits_tol.append(bool(dist[y0, x0] <= POINTING_TOLERANCE_PX))
                bright_hits.append(bool(mask[brightest_point(img)[::-1]]))
        y_arr, p_arr = np.array(y), np.array(p)
        m = binary_metrics(y_arr, p_arr)
        m["pointing_game"] = {"n": len(hits), "hit_rate": float(np.mean(hits)) if hits else None,
                              f"hit_rate_within_{POINTING_TOLERANCE_PX}px": float(np.mean(hits_tol)) if hits else None,
                              "baseline_brightest_point": float(np.mean(bright_hits)) if hits else None}
        per_patient = {}
        for pat in sorted(set(slice_patients)):
            idx = [i for i, q in enumerate(slice_patients) if q == pat]
            if len(set(y_arr[idx].tolist())) == 2:
                per_patient[pat] = binary_metrics(y_arr[idx], p_arr[idx])["roc_auc"]
        m["roc_auc_per_patient"] = per_patient
        m["flagged_unfamiliar"] = float(np.mean(flagged))
        out["sequences"][seq] = m
    return out


def evaluate_yes_no(root: str, model, dedup_against: str | None = None) -> dict:
    """Binary accuracy/F1/AUC on a yes/no folder, after removing near-duplicates of the training data."""
    from brainscan.runtime.inference import run_model
    from brainscan.scans.batch import prepare_paths

    ds = data_mod.discover(root)
    paths = [it.path for it in ds.items]
    keep = np.ones(len(paths), bool)
    removed = 0
    if dedup_against:
        ref = data_mod.discover(dedup_against)
        ref_hashes = data_mod.hash_all([it.path for it in ref.items])
        best, _ = data_mod.hamming_matrix_min(data_mod.hash_all(paths), ref_hashes)
        keep = best > data_mod.NEAR_DUPLICATE_BITS
        removed = int((~keep).sum())
    info = {"data": root, "images": len(paths), "removed_near_duplicates_of_training": removed,
            "dedup_against": dedup_against}
    kept = [p for p, k in zip(paths, keep, strict=True) if k]
    if not kept:
        return {**info, "n": 0, "message": "Every image is a near-duplicate of the training data."}
    labels = [it.label for it, k in zip(ds.items, keep, strict=True) if k]
    inputs, ok, errors = prepare_paths(kept, model.size)
    preds = run_model(model, inputs)
    y = np.array([labels[i] != "notumor" for i in ok], int)
    m = binary_metrics(y, np.array([pr.tumor_probability for pr in preds]))
    m["flagged_unfamiliar"] = float(np.mean([pr.out_of_distribution for pr in preds]))
    m.update(info, unreadable=len(errors))
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
    for seq, m in external.get("brats", {}).get("sequences", {}).items():
        summary[f"brats_{seq}"] = {"n": m["n"], "tumor_roc_auc": m.get("roc_auc"),
                                   "pointing_game_hit_rate": m["pointing_game"]["hit_rate"],
                                   "flagged_unfamiliar": m["flagged_unfamiliar"]}
    if "yes_no" in external:
        m = external["yes_no"]
        summary["yes_no_dedup"] = {"n": m["n"], "accuracy": m["accuracy"], "f1": m["f1"],
                                   "tumor_roc_auc": m.get("roc_auc"),
                                   "removed_near_duplicates": m["removed_near_duplicates_of_training"],
                                   "flagged_unfamiliar": m["flagged_unfamiliar"]}
    card["external"] = summary
    card["limitations"] = measured_limitations(summary)
    write_json(folder / "card.json", card)


def measured_limitations(summary: dict) -> list[str]:
    """Plain sentences built from the measured external figures (no figure is typed by hand)."""
    out = ["The training set's classes come from different source collections (tumor classes mostly contrast T1 "
           "from one collection, no-tumor images from others), so the model can learn a source's look instead of "
           "the tumor."]
    for key, m in summary.items():
        if key.startswith("brats_") and (m.get("tumor_roc_auc") or 0) < 0.9:
            seq = {"brats_flair": "FLAIR", "brats_t1c": "contrast T1"}.get(key, key)
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
