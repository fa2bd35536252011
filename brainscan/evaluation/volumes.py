"""`python -m brainscan volumes-eval`: choose the volume rule on validation patients, measure it on held-out ones.

Volumes, with the model folder's split.json deciding which patients are validation, test or the held-out
institution:

* lgg-tcga-slices: each case's slices of one sequence rebuilt into a stack (slices.csv gives case and slice
  index; indices without a slice in the set become missing slices). Every case has a glioma, so each stack is a
  tumour volume; the case's tumour-free slices alone (3 or more slices from the tumour, every second one) are
  also stacked, as a tumour-free volume of the same head. Their geometry is nominal (the JPEGs carry none):
  0.9375 mm pixels and the case's head over LGG_HEAD_MM, so a 20-slice case has 7.5 mm between slices.
* ms-ljubljana-slices: each patient's study and sequence (24 slices, tumour-free), nominal MS_SLICE_MM apart.
* ms-ljubljana-volumes: the six NIfTI files as a user would drop them (tumour-free; patients 01 and 04, whose
  slices the shipped model was trained on, so they are reported apart).

Every slice goes through brainscan.runtime.volume.check_slices (the app's path). Candidate rules are scored
on the validation volumes only: each gets a logistic calibration and the threshold with the best balanced
accuracy there (the widest gap between the classes breaks ties); the rule with the best validation balanced
accuracy, then AUC, then margin wins. The peak slice (with or without neighbour smoothing) is chosen the same
way, on validation tumour volumes. Held-out figures: sensitivity and specificity per set; on tumour volumes, the
share whose peak slice lies inside the outlined tumour's slices, and whose heatmap peak lies within 10 mm of
the outline in world coordinates.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from brainscan.runtime.inference import Model
from brainscan.runtime.volume import SliceAnswers, VolumeRule, check_slices, peak_slice, rule_score, write_rule
from brainscan.scans.volume import Volume, from_slices

LGG = "lgg-tcga-slices"
MS = "ms-ljubljana-slices"
MS_VOLUMES = "ms-ljubljana-volumes"
LGG_PIXEL_MM = 0.9375
LGG_HEAD_MM = 150.0
MS_SLICE_MM = 3.5
NEAR_MM = 10.0
CANDIDATES: tuple[tuple[str, float], ...] = (
    ("max", 0.0), ("top_mm", 5.0), ("top_mm", 10.0), ("top_mm", 15.0), ("top_mm", 20.0), ("top_mm", 25.0),
    ("top_mm", 30.0), ("run_mm", 5.0), ("run_mm", 10.0), ("run_mm", 15.0), ("run_mm", 20.0))
SMOOTHING = (1, 3)


@dataclass
class Case:
    """One volume to check: how to build it and its truth."""

    name: str
    source: str  # a row of the report: "lgg-tcga test", ...
    part: str  # val / test / institution_holdout / train / other
    tumour: bool
    build: Callable[[], Volume]
    extent: tuple[int, int] | None = None  # tumour slices (first, last) in the volume's slice indices
    masks: dict[int, str] = field(default_factory=dict)  # slice index -> mask file (lgg)


@dataclass
class Checked:
    case: Case
    tumor: np.ndarray  # P(tumour) per slice (NaN: not checked)
    slice_mm: float
    n_checked: int
    n_outside: int
    types: dict[str, np.ndarray] = field(default_factory=dict)  # per tumour class, per slice
    pointing: dict | None = None


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _parts(model_path: Path) -> dict[str, str]:
    """file (as in split.json, 'source/relative') -> split part."""
    split = json.loads((model_path / "split.json").read_text()).get("files", {})
    out = {}
    for part in ("train", "val", "test", "institution_holdout"):
        for f in split.get(part, []):
            out[f] = part
    return out


def _gray8(path: Path) -> np.ndarray:
    from brainscan.scans.batch import load_gray  # bounded reads, OpenCV's decode as trained

    return np.rint(load_gray(str(path)) * 255).astype(np.uint8)


def lgg_cases(data: Path, parts: dict[str, str], wanted: set[str]) -> Iterator[Case]:
    root = data / LGG
    by = defaultdict(list)
    for r in _read_csv(root / "slices.csv"):
        by[(r["case"], r["sequence"])].append(r)
    for (case, seq), rows in sorted(by.items()):
        part = next((parts[f"{LGG}/{r['file']}"] for r in rows if f"{LGG}/{r['file']}" in parts), "other")
        if part not in wanted:
            continue
        index = {int(r["slice"]): r for r in rows}
        lo, hi = min(index), max(index)
        slice_mm = LGG_HEAD_MM / hi
        glioma = sorted(k for k, r in index.items() if r["label"] == "glioma")
        name = f"{case} {seq}"

        def stack(only_free: bool = False, index=index, lo=lo, hi=hi, slice_mm=slice_mm, name=name) -> Volume:
            slices = [None if k not in index or (only_free and index[k]["label"] == "glioma")
                      else _gray8(root / index[k]["file"]) for k in range(lo, hi + 1)]
            return from_slices(slices, name=name, pixel_mm=LGG_PIXEL_MM, slice_mm=slice_mm, window=(0.0, 255.0))

        masks = {k - lo: index[k]["mask"] for k in glioma if index[k].get("mask")}
        extent = (glioma[0] - lo, glioma[-1] - lo) if glioma else None
        label = {"val": "validation", "institution_holdout": "institution HT (unseen site)"}.get(part, part)
        yield Case(name, f"lgg-tcga {label}, tumour volumes", part, bool(glioma), stack, extent, masks)
        if glioma and any(r["label"] == "notumor" for r in rows):
            yield Case(f"{name} (tumour-free slices)", f"lgg-tcga {label}, tumour-free slices of each case", part,
                       False, lambda stack=stack: stack(True))


def ms_cases(data: Path, parts: dict[str, str], wanted: set[str]) -> Iterator[Case]:
    root = data / MS
    by = defaultdict(list)
    for r in _read_csv(root / "slices.csv"):
        by[(r["patient"], r["study"], r["sequence"])].append(r)
    for (patient, study, seq), rows in sorted(by.items()):
        part = next((parts[f"{MS}/{r['file']}"] for r in rows if f"{MS}/{r['file']}" in parts), "other")
        if part not in wanted:
            continue
        index = {int(r["slice"]): r for r in rows}
        lo, hi = min(index), max(index)

        def stack(index=index, lo=lo, hi=hi, name=f"{patient} {study} {seq}") -> Volume:
            slices = [_gray8(root / index[k]["file"]) if k in index else None for k in range(lo, hi + 1)]
            return from_slices(slices, name=name, pixel_mm=1.0, slice_mm=MS_SLICE_MM, window=(0.0, 255.0))

        label = {"val": "validation"}.get(part, part)
        yield Case(f"{patient} {study} {seq}", f"ms-ljubljana {label} patient, tumour-free", part, False, stack)


def ms_volume_cases(data: Path) -> Iterator[Case]:
    from brainscan.scans.studies import studies_from_paths

    for path in sorted((data / MS_VOLUMES).glob("patient*_study*_*.nii.gz")):
        yield Case(path.name, "ms-ljubljana-volumes (NIfTI; patients trained on as slices)", "other", False,
                   lambda path=path: studies_from_paths([str(path)])[0].load())


def check_case(model: Model, case: Case, head_relative: float) -> tuple[Checked, Volume, SliceAnswers]:
    volume = case.build()
    answers = check_slices(model, volume, head_relative)
    types = {c: np.array([answers.predictions[k].probabilities[c] if k in answers.predictions else np.nan
                          for k in range(answers.n_slices)]) for c in model.classes if c != "notumor"}
    return (Checked(case, answers.tumor(), answers.slice_mm, len(answers.checked), len(answers.outside_head), types),
            volume, answers)


# --- rules -------------------------------------------------------------------------------------------------------

def _logit(p):
    p = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def scores(checked: list[Checked], kind: str, mm: float, slice_threshold: float) -> np.ndarray:
    return np.array([rule_score(c.tumor, c.slice_mm, kind, mm, slice_threshold)[0] for c in checked])


def fit(score: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, dict]:
    """(a, b, threshold on the calibrated probability, validation figures) for one rule's validation scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    x = _logit(score)[:, None]
    if len(set(truth.tolist())) < 2:
        return 1.0, 0.0, 0.5, {}
    lr = LogisticRegression(C=1.0).fit(x, truth)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    cal = 1 / (1 + np.exp(-(a * x[:, 0] + b)))
    z = np.sort(np.unique(x[:, 0]))
    cuts = np.concatenate([[z[0] - 1], (z[:-1] + z[1:]) / 2, [z[-1] + 1]])
    best = None
    for cut in cuts:
        called = x[:, 0] >= cut
        sens = float(called[truth == 1].mean())
        spec = float((~called[truth == 0]).mean())
        margin = float(np.min(np.abs(x[:, 0] - cut)))
        key = (round((sens + spec) / 2, 6), round(sens, 6), margin)
        if best is None or key > best[0]:
            best = (key, cut, sens, spec, margin)
    _, cut, sens, spec, margin = best
    threshold = float(1 / (1 + math.exp(-(a * cut + b)))) if a > 0 else 0.5
    return a, b, threshold, {"auc": float(roc_auc_score(truth, score)), "sensitivity": sens, "specificity": spec,
                             "balanced_accuracy": (sens + spec) / 2, "margin_logit": margin,
                             "brier": float(np.mean((cal - truth) ** 2))}


def choose_rule(val: list[Checked], slice_threshold: float, head_relative: float) -> tuple[VolumeRule, list[dict]]:
    truth = np.array([int(c.case.tumour) for c in val])
    table = []
    best = None
    for kind, mm in CANDIDATES:
        s = scores(val, kind, mm, slice_threshold)
        a, b, threshold, figures = fit(s, truth)
        row = {"rule": kind, "mm": mm, "a": a, "b": b, "threshold": threshold, **figures}
        table.append(row)
        key = (round(figures.get("balanced_accuracy", 0), 6), round(figures.get("auc", 0), 6),
               figures.get("margin_logit", 0))
        if best is None or key > best[0]:
            best = (key, row)
    row = best[1]
    n_pos, n_neg = int(truth.sum()), int(len(truth) - truth.sum())
    rule = VolumeRule(row["rule"], row["mm"], row["a"], row["b"], row["threshold"], head_relative,
                      chosen_on=f"validation volumes ({n_pos} tumour, {n_neg} tumour-free)")
    tumours = [c for c in val if c.case.tumour and c.case.extent]
    peak_rates = {n: float(np.mean([_in_extent(peak_slice(c.tumor, n), c.case.extent) for c in tumours]))
                  if tumours else 0.0 for n in SMOOTHING}
    smooth = max(SMOOTHING, key=lambda n: (peak_rates[n], -n))
    return replace(rule, peak_smooth=smooth, measured={"peak_in_extent_validation": peak_rates}), table


def _in_extent(k: int | None, extent: tuple[int, int] | None) -> bool:
    return k is not None and extent is not None and extent[0] <= k <= extent[1]


def calibrated(rule: VolumeRule, score: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(rule.a * _logit(score) + rule.b)))


# --- pointing in world coordinates --------------------------------------------------------------------------------

def outline_distance_mm(volume: Volume, masks: dict[int, np.ndarray], ras: tuple[float, float, float]) -> float:
    """Distance from a RAS+ point to the nearest outlined voxel (any slice)."""
    best = math.inf
    p = np.asarray(ras)
    for k, mask in masks.items():
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            continue
        pts = np.stack([xs, ys, np.full(xs.size, k), np.ones(xs.size)], axis=0).astype(np.float64)
        world = (volume.affine @ pts)[:3].T  # the stack's display pixels are its voxels
        best = min(best, float(np.min(np.linalg.norm(world - p, axis=1))))
    return best


def point(model: Model, checked: Checked, rule: VolumeRule, data: Path, cam_method: str) -> dict:
    """Peak slice in the tumour's slices, and the peak slice's heatmap maximum within NEAR_MM of the outline."""
    from brainscan.cam.heatmap import heatmap
    from brainscan.runtime.answer import most_probable_tumor_class
    from brainscan.scans.preprocess import prepare

    k = peak_slice(checked.tumor, rule.peak_smooth)
    out = {"peak_slice": k, "peak_in_extent": _in_extent(k, checked.case.extent)}
    if k is None:
        return {**out, "near_outline": False}
    volume = checked.case.build()
    prepared = prepare(volume.slice_pixels(k), model.size, keep_steps=False)
    cls = most_probable_tumor_class({c: v[k] for c, v in checked.types.items()})  # where it points at a tumour
    hm = heatmap(model, prepared, model.classes.index(cls), cam_method)
    ras = volume.display_world(*hm.peak, k)
    masks = {s: cv2.imread(str(data / LGG / f), cv2.IMREAD_GRAYSCALE) > 127
             for s, f in checked.case.masks.items()}
    dist = outline_distance_mm(volume, masks, ras)
    return {**out, "cam_peak_ras_mm": [round(v, 1) for v in ras], "distance_mm": round(dist, 2),
            "near_outline": bool(dist <= NEAR_MM and not hm.empty)}


# --- the command ------------------------------------------------------------------------------------------------

def run(model_path: str, data: str, write: bool = True, head_relative: float = 0.15, cam_method: str = "gradcam",
        log: Callable[[str], None] = print, per_volume: str | None = None) -> dict:
    from brainscan.runtime.inference import load_model

    t0 = time.perf_counter()
    model = load_model(model_path)
    folder, root = Path(model.path), Path(data)
    parts = _parts(folder)
    slice_threshold = model.tumor_threshold if model.tumor_threshold is not None else 0.5
    held = {"test", "institution_holdout"}
    cases = list(lgg_cases(root, parts, {"val"} | held)) + list(ms_cases(root, parts, {"val", "test"}))
    if (root / MS_VOLUMES).is_dir():
        cases += list(ms_volume_cases(root))
    log(f"{len(cases)} volumes to check ({sum(c.part == 'val' for c in cases)} validation)")
    checked: list[Checked] = []
    for i, case in enumerate(cases):
        checked.append(check_case(model, case, head_relative)[0])
        if (i + 1) % 50 == 0:
            log(f"  {i + 1} volumes checked ({time.perf_counter() - t0:.0f} s)")
    val = [c for c in checked if c.case.part == "val"]
    rule, table = choose_rule(val, slice_threshold, head_relative)
    for c in checked:  # the heatmap once the rule (and its peak smoothing) is known
        if c.case.tumour and c.case.part in held:
            c.pointing = point(model, c, rule, root, cam_method)
    sets: dict[str, dict] = {}
    for c in checked:
        sets.setdefault(c.case.source, {"cases": []})["cases"].append(c)
    report = {}
    for source, entry in sets.items():
        group = entry["cases"]
        s = scores(group, rule.kind, rule.mm, slice_threshold)
        called = calibrated(rule, s) >= rule.threshold
        truth = np.array([c.case.tumour for c in group])
        row = {"n": len(group), "called_tumour": int(called.sum()),
               "slices_checked": int(sum(c.n_checked for c in group)),
               "slices_outside_head": int(sum(c.n_outside for c in group))}
        if truth.any():
            row["sensitivity"] = float(called[truth].mean())
            with_extent = [c for c in group if c.case.extent]
            row["peak_in_extent"] = float(np.mean([_in_extent(peak_slice(c.tumor, rule.peak_smooth), c.case.extent)
                                                   for c in with_extent])) if with_extent else None
            pointed = [c.pointing for c in group if c.pointing]
            if pointed:
                row[f"cam_peak_within_{NEAR_MM:g}mm"] = float(np.mean([p["near_outline"] for p in pointed]))
                row["cam_peak_distance_mm_median"] = float(np.median([p["distance_mm"] for p in pointed]))
        if (~truth).any():
            row["specificity"] = float((~called[~truth]).mean())
        row["missed_or_false"] = [c.case.name for c, k, t in zip(group, called, truth, strict=True) if k != t]
        report[source] = row
    result = {"rule": rule.__dict__ | {"description": rule.describe()}, "candidates_on_validation": table,
              "sets": report, "slice_threshold": slice_threshold, "nominal_geometry": {
                  "lgg_pixel_mm": LGG_PIXEL_MM, "lgg_head_mm": LGG_HEAD_MM, "ms_slice_mm": MS_SLICE_MM},
              "seconds": round(time.perf_counter() - t0, 1)}
    if per_volume:  # every volume's per-slice probabilities, for a second look without checking them again
        Path(per_volume).write_text(json.dumps([{
            "name": c.case.name, "source": c.case.source, "part": c.case.part, "tumour": c.case.tumour,
            "extent": c.case.extent, "slice_mm": c.slice_mm, "pointing": c.pointing,
            "tumor": [None if np.isnan(v) else round(float(v), 5) for v in c.tumor]} for c in checked]))
    if write:
        write_rule(folder, rule, {"sets": report, "candidates_on_validation": table,
                                  "command": "python -m brainscan volumes-eval", "slice_threshold": slice_threshold})
    return result


def summary_lines(result: dict) -> list[str]:
    r = result["rule"]
    lines = [f"rule: {r['description']}; threshold {r['threshold']:.3f} on the calibrated volume probability "
             f"(a={r['a']:.2f}, b={r['b']:.2f}); peak slice smoothed over {r['peak_smooth']}",
             "candidates on validation volumes (balanced accuracy, AUC, sensitivity, specificity, margin):"]
    for row in result["candidates_on_validation"]:
        lines.append(f"  {row['rule']:<7} {row['mm']:>4g} mm  {row.get('balanced_accuracy', 0):.3f}  "
                     f"{row.get('auc', 0):.3f}  {row.get('sensitivity', 0):.3f}  {row.get('specificity', 0):.3f}  "
                     f"{row.get('margin_logit', 0):.2f}")
    lines.append("per set:")
    for source, row in result["sets"].items():
        figs = [f"n={row['n']}"]
        for key, label in (("sensitivity", "sensitivity"), ("specificity", "specificity"),
                           ("peak_in_extent", "peak slice in tumour"), (f"cam_peak_within_{NEAR_MM:g}mm",
                                                                          f"heatmap peak within {NEAR_MM:g} mm")):
            if row.get(key) is not None:
                figs.append(f"{label} {100 * row[key]:.1f}%")
        lines.append(f"  {source}: " + ", ".join(figs))
        if row["missed_or_false"]:
            lines.append(f"    wrong: {', '.join(row['missed_or_false'][:8])}")
    lines.append(f"{result['seconds']:.0f} s")
    return lines
