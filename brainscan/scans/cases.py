"""The case library (case_library/: real slices with known truth) and the quiz's rules. No model here.

A case is a PNG with its truth (class, sequence, source, licence, attribution) and, for tumour cases, the
tumour's outline as a mask of the same geometry. The quiz picks cases by a seed, so a class that enters the
same number and seed sees the same cases in the same order; it scores a learner's answers and the model's
answers on the same questions. Nothing here stores anything: the pages keep the score in the session only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from brainscan.config import CASE_LIBRARY_DIR

LIBRARY_DIR = CASE_LIBRARY_DIR
OUTLINE_RGB = (0, 255, 90)  # the true outline: green, unlike every colour map's hot end
PEAK_RGB = (255, 255, 255)
TUMOUR_TYPES = ("glioma", "meningioma", "pituitary")


@dataclass(frozen=True)
class Case:
    id: str
    path: Path
    mask_path: Path | None
    truth: str  # a class name: glioma, notumor, ...
    sequence: str
    sequence_name: str
    source: str
    source_name: str
    licence: str
    attribution: str
    original_file: str
    group: str
    note: str

    @property
    def tumour(self) -> bool:
        return self.truth != "notumor"

    @property
    def name(self) -> str:
        """The file name a scan check shows (no patient identifier: cases are numbered)."""
        return f"{self.id}.png"

    @property
    def title(self) -> str:
        return f"{self.id}: {self.sequence_name}, {self.source_name}"

    def data(self) -> bytes:
        return self.path.read_bytes()

    def mask(self) -> np.ndarray | None:
        """The tumour outline's mask (bool, image geometry), or None for a case without one."""
        if self.mask_path is None:
            return None
        m = cv2.imread(str(self.mask_path), cv2.IMREAD_GRAYSCALE)
        return None if m is None else m > 127


def load_library(folder: Path | str | None = None) -> list[Case]:
    """Every case of the library (empty when the folder or its cases.json is missing)."""
    root = Path(folder) if folder else LIBRARY_DIR
    try:
        entries = json.loads((root / "cases.json").read_text(encoding="utf-8"))["cases"]
    except (OSError, ValueError, KeyError):
        return []
    out = []
    for e in entries:
        out.append(Case(
            id=str(e["id"]), path=root / e["file"], mask_path=root / e["mask"] if e.get("mask") else None,
            truth=str(e["truth"]), sequence=str(e.get("sequence", "")), sequence_name=str(e.get("sequence_name", "")),
            source=str(e.get("source", "")), source_name=str(e.get("source_name", e.get("source", ""))),
            licence=str(e.get("licence", "")), attribution=str(e.get("attribution", "")),
            original_file=str(e.get("original_file", "")), group=str(e.get("group", "")), note=str(e.get("note", ""))))
    return out


def by_id(cases: list[Case], case_id: str | None) -> Case | None:
    return next((c for c in cases if c.id == case_id), None) if case_id else None


def filter_cases(cases: list[Case], truths: list[str] | None = None, sequences: list[str] | None = None) -> list[Case]:
    """Cases whose truth and sequence are among the given ones (None or empty: any)."""
    return [c for c in cases if (not truths or c.truth in truths) and (not sequences or c.sequence in sequences)]


# --- the outline and the heatmap's peak ------------------------------------------------------------

def outline_contours(mask: np.ndarray) -> list[np.ndarray]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return list(contours)


def draw_outline(rgb: np.ndarray, mask: np.ndarray, peak: tuple[int, int] | None = None) -> np.ndarray:
    """A copy of an RGB image (the heatmap overlay, same geometry as the mask) with the true outline drawn
    in green and, if given, the heatmap's peak as a white cross."""
    out = np.ascontiguousarray(rgb.copy())
    side = max(mask.shape)
    thickness = max(1, round(side / 200))
    cv2.drawContours(out, outline_contours(mask), -1, OUTLINE_RGB, thickness, lineType=cv2.LINE_8)
    if peak is not None:
        cv2.drawMarker(out, (int(peak[0]), int(peak[1])), PEAK_RGB, cv2.MARKER_CROSS, max(8, side // 20),
                       thickness + 1, cv2.LINE_AA)
    return out


def inside(mask: np.ndarray | None, point: tuple[int, int] | None) -> bool | None:
    """Whether an (x, y) point falls inside the mask; None without a mask or a point."""
    if mask is None or point is None:
        return None
    x, y = int(point[0]), int(point[1])
    if not (0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]):
        return False
    return bool(mask[y, x])


def peak_sentence(mask: np.ndarray | None, peak: tuple[int, int], class_label: str) -> str:
    """One sentence on where the heatmap's peak falls relative to the true outline."""
    if mask is None:
        return "This case has no tumour, so there is no outline: the heatmap can only show what the model used."
    if inside(mask, peak):
        return f"The heatmap (for “{class_label}”) peaks **inside** the true tumour outline."
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    px = float(dist[int(peak[1]), int(peak[0])])
    return (f"The heatmap (for “{class_label}”) peaks **outside** the true tumour outline, {px:.0f} pixels from "
            "its edge.")


# --- the quiz --------------------------------------------------------------------------------------

def quiz_cases(cases: list[Case], n: int, seed: int) -> list[Case]:
    """n cases in an order fixed by the seed (the same library, n and seed give the same quiz)."""
    if not cases:
        return []
    order = np.random.default_rng(int(seed)).permutation(len(cases))
    return [cases[i] for i in order[: max(1, min(int(n), len(cases)))]]


@dataclass(frozen=True)
class Answer:
    """One answer to a quiz case: tumour or not, which type (None when no tumour), where (x, y) or None."""

    tumour: bool
    kind: str | None = None
    point: tuple[int, int] | None = None


def score(case: Case, answer: Answer, mask: np.ndarray | None = None) -> dict[str, bool | None]:
    """Per question: True / False, or None where the question does not apply (type and place only for
    tumour cases; place only when a point was given and the case has an outline)."""
    kind_ok = None
    place_ok = None
    if case.tumour:
        kind_ok = bool(answer.tumour and answer.kind == case.truth)
        if answer.point is not None:
            place_ok = inside(mask if mask is not None else case.mask(), answer.point)
    return {"tumour": answer.tumour == case.tumour, "type": kind_ok, "place": place_ok}


def model_answer(label: str, peak: tuple[int, int] | None) -> Answer:
    """The model's answer in the quiz's terms. label: the prediction's answer (its decision at the operating
    threshold: 'notumor' or a tumour class); its 'click' is the peak of its heatmap for its most likely tumour
    class."""
    tumour = label != "notumor"
    return Answer(tumour, label if tumour else None, peak)


def totals(scores: list[dict[str, bool | None]]) -> dict[str, tuple[int, int]]:
    """{question: (right, asked)} over a list of score() results."""
    out = {}
    for q in ("tumour", "type", "place"):
        asked = [s[q] for s in scores if s.get(q) is not None]
        out[q] = (int(sum(asked)), len(asked))
    return out
