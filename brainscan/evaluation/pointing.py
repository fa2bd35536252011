"""The pointing game: does the heatmap's peak fall inside the tumour outline? Read against two model-free
guesses on the same slices: the brightest spot after a 5 px blur (lesions are bright on FLAIR) and a random
point inside the head (its hit rate is the outline's share of the head's area).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from brainscan.cam.heatmap import heatmap
from brainscan.runtime.answer import heatmap_class
from brainscan.runtime.inference import Prediction, predict
from brainscan.scans.batch import load_gray
from brainscan.scans.preprocess import prepare

POINTING_TOLERANCE_PX = 8  # a peak this close to the outline also counts in the tolerant variant
HEAD_LEVEL = 0.05  # pixels brighter than this (of 1) are inside the head, for the random-point baseline


def brightest_point(img: np.ndarray) -> tuple[int, int]:
    """(x, y) of the brightest spot after a 5 px Gaussian blur."""
    blurred = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 5)
    y, x = np.unravel_index(int(blurred.argmax()), blurred.shape)
    return int(x), int(y)


def random_point_hit_rate(img: np.ndarray, mask: np.ndarray) -> float:
    """Chance that a point drawn uniformly inside the head falls in the outline."""
    head = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 2) > HEAD_LEVEL
    return float((mask & head).sum() / max(head.sum(), 1))


@dataclass
class PointingTally:
    hits: list[bool] = field(default_factory=list)
    hits_tolerant: list[bool] = field(default_factory=list)
    brightest: list[bool] = field(default_factory=list)
    random: list[float] = field(default_factory=list)
    empty: list[bool] = field(default_factory=list)  # no positive evidence anywhere: the peak is meaningless
    fell_back: list[bool] = field(default_factory=list)  # the method's map was empty; its when_empty one was used

    def add(self, model, img: np.ndarray, prepared, prediction: Prediction, mask: np.ndarray,
            cam_method: str = "gradcam", fallback: bool = True) -> None:
        k = model.classes.index(heatmap_class(prediction, tumor_evidence=True))  # where it would point at a tumour
        h = heatmap(model, prepared, k, cam_method, fallback=fallback)
        x0, y0 = h.peak
        self.empty.append(h.empty)
        self.fell_back.append(h.instead_of is not None)
        self.hits.append(bool(mask[y0, x0]) and not h.empty)
        dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
        self.hits_tolerant.append(bool(dist[y0, x0] <= POINTING_TOLERANCE_PX) and not h.empty)
        self.brightest.append(bool(mask[brightest_point(img)[::-1]]))
        self.random.append(random_point_hit_rate(img, mask))

    def summary(self) -> dict:
        if not self.hits:
            return {"n": 0, "hit_rate": None}
        return {"n": len(self.hits), "hit_rate": float(np.mean(self.hits)),
                f"hit_rate_within_{POINTING_TOLERANCE_PX}px": float(np.mean(self.hits_tolerant)),
                "baseline_brightest_point": float(np.mean(self.brightest)),
                "baseline_random_point_in_head": float(np.mean(self.random)),
                "empty_heatmap": float(np.mean(self.empty)), "fell_back": float(np.mean(self.fell_back))}


def evaluate_outlined_slices(model, data_root: str, split_files: dict[str, list[str]], csv_name: str,
                             source_dir: str, parts: tuple[str, ...] = ("val", "test", "institution_holdout"),
                             cam_method: str = "gradcam", fallback: bool = True) -> dict:
    """Pointing game per part and sequence on a source's outlined tumour slices that the model was not trained
    on (its split.json parts), e.g. lgg-tcga-slices validation and test patients and the held-out institution.
    Validation is where a heatmap method may be chosen (`python -m brainscan pointing`); test and the held-out
    institution are where it is reported."""
    root = Path(data_root) / source_dir
    with open(root / csv_name, newline="") as f:
        rows = list(csv.DictReader(f))
    masks = {r["file"]: str(root / r["mask"]) for r in rows if r.get("mask")}
    seq_of = {r["file"]: r.get("sequence", "unknown") for r in rows}
    return evaluate_outlined_images(model, data_root, split_files, source_dir, masks, seq_of, parts, cam_method,
                                    fallback)


def evaluate_outlined_images(model, data_root: str, split_files: dict[str, list[str]], source_dir: str,
                             masks: dict[str, str], group_of: dict[str, str], parts: tuple[str, ...],
                             cam_method: str = "gradcam", fallback: bool = True) -> dict:
    """Pointing game per part and group (a sequence, or a tumour class) on the images of one source folder that
    have an outline: masks maps a path inside the source folder to its mask file; group_of names its group."""
    root = Path(data_root) / source_dir
    out: dict = {"data": str(root), "cam_method": cam_method, "fallback": fallback, "parts": {}}
    for part in parts:
        tallies: dict[str, PointingTally] = {}
        for rel in split_files.get(part, []):
            if not rel.startswith(source_dir + "/"):
                continue
            inner = rel[len(source_dir) + 1:]
            if inner not in masks:
                continue
            img = load_gray(str(root / inner))
            mask = load_gray(masks[inner]) > 0.5
            prepared = prepare(img, model.size)
            pred = predict(model, prepared.input)
            tallies.setdefault(group_of.get(inner, "unknown"), PointingTally()).add(
                model, img, prepared, pred, mask, cam_method, fallback)
        if tallies:
            out["parts"][part] = {group: t.summary() for group, t in sorted(tallies.items())}
    return out
