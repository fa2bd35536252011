"""One answer per volume: every head slice through the slice check (batched), then the volume rule (no TensorFlow).

Each axial slice that holds head goes through the same steps as a single scan: brainscan.scans.preprocess.prepare
and brainscan.runtime.inference.run_model (one batched call for the whole volume). Slices outside the head are
skipped and counted. The volume's score is the rule in the model folder's ``volume.json`` (chosen on
validation volumes by ``python -m brainscan volumes-eval``), made a calibrated probability by the logistic fit
stored with it, and decided at the threshold stored with it; the tumour type is the most probable one over the
slices that made the score. Without volume.json the default rule below is used, uncalibrated, and says so.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from brainscan.runtime.inference import Model, Prediction, make_prediction, run_model
from brainscan.scans.preprocess import prepare
from brainscan.scans.volume import Volume, head_slices

RULE_FILE = "volume.json"
RULES = ("top_mm", "run_mm", "max")


@dataclass(frozen=True)
class VolumeRule:
    """kind "top_mm": the mean tumour probability of the most probable slices covering ``mm`` millimetres (at
    least one slice); "run_mm": the longest run of consecutive slices at or above the slice threshold, in mm,
    scored as a share of ``mm`` (capped at 1); "max": the most probable slice. The score becomes a probability by
    sigmoid(a * logit(score) + b) and the answer is a tumour at ``threshold`` or above."""

    kind: str = "top_mm"
    mm: float = 10.0
    a: float = 1.0
    b: float = 0.0
    threshold: float | None = None  # on the calibrated volume probability; None: the model's slice threshold
    head_relative: float = 0.15  # a slice is outside the head below this share of the largest head slice
    peak_smooth: int = 1  # the peak slice: argmax of the tumour probability averaged over this many slices
    chosen_on: str = "default (not measured on validation volumes)"
    measured: dict = field(default_factory=dict)

    def describe(self) -> str:
        what = {"top_mm": f"the mean tumour probability of the most probable slices covering {self.mm:g} mm",
                "run_mm": f"the longest run of consecutive slices above the slice threshold, against {self.mm:g} mm",
                "max": "the most probable slice"}[self.kind]
        return f"{what}; chosen on {self.chosen_on}"


def read_rule(folder: str | Path | None) -> VolumeRule:
    """The model folder's volume.json, or the default rule."""
    if folder is None:
        return VolumeRule()
    try:
        data = json.loads((Path(folder) / RULE_FILE).read_text())
        fields_ = VolumeRule.__dataclass_fields__
        return VolumeRule(**{k: v for k, v in data.get("rule", data).items() if k in fields_})
    except (OSError, ValueError, TypeError):
        return VolumeRule()


def write_rule(folder: str | Path, rule: VolumeRule, extra: dict | None = None) -> Path:
    dest = Path(folder) / RULE_FILE
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(json.dumps({"rule": asdict(rule), **(extra or {})}, indent=2) + "\n")
    tmp.replace(dest)
    return dest


@dataclass
class SliceAnswers:
    """The slice check of every slice: predictions of the checked ones, the others counted."""

    n_slices: int
    checked: list[int]
    outside_head: list[int]
    missing: list[int]
    predictions: dict[int, Prediction]
    slice_mm: float
    ms: float = 0.0

    def tumor(self) -> np.ndarray:
        """P(tumour) per slice, NaN where a slice was not checked."""
        out = np.full(self.n_slices, np.nan)
        for k, p in self.predictions.items():
            out[k] = p.tumor_probability
        return out

    def above(self, threshold: float) -> np.ndarray:
        return np.nan_to_num(self.tumor(), nan=0.0) >= threshold


def check_slices(model: Model, volume: Volume, head_relative: float = 0.15, batch_size: int = 32,
                 workers: int = 2) -> SliceAnswers:
    """Every head slice of the volume prepared (as the slice check does) and predicted in batches."""
    import time

    t = time.perf_counter()
    keep, outside = head_slices(volume, relative=head_relative)

    def one(k: int) -> np.ndarray:
        return prepare(volume.slice_pixels(k), model.size, keep_steps=False).input

    with ThreadPoolExecutor(max(1, workers)) as pool:  # OpenCV releases the GIL
        inputs = list(pool.map(one, keep))
    preds = run_model(model, np.stack(inputs), batch_size) if inputs else []
    return SliceAnswers(volume.n_slices, keep, outside, sorted(volume.missing), dict(zip(keep, preds, strict=True)),
                        volume.spacing[2], 1000 * (time.perf_counter() - t))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def rule_score(tumor: np.ndarray, slice_mm: float, kind: str, mm: float, slice_threshold: float) -> tuple[float,
                                                                                                          list[int]]:
    """(score in [0, 1], the slices it rests on) of per-slice P(tumour) (NaN: not checked)."""
    valid = np.flatnonzero(np.isfinite(tumor))
    if valid.size == 0:
        return 0.0, []
    if kind == "max":
        k = int(valid[np.argmax(tumor[valid])])
        return float(tumor[k]), [k]
    if kind == "top_mm":
        n = max(1, int(math.ceil(mm / max(slice_mm, 1e-6) - 1e-9)))
        top = valid[np.argsort(-tumor[valid], kind="stable")[:n]]
        return float(np.mean(tumor[top])), sorted(int(k) for k in top)
    if kind == "run_mm":
        best: list[int] = []
        run: list[int] = []
        for k in range(len(tumor)):
            if np.isfinite(tumor[k]) and tumor[k] >= slice_threshold:
                run.append(k)
                if len(run) > len(best):
                    best = list(run)
            else:
                run = []
        length = len(best) * slice_mm
        return min(1.0, length / max(mm, 1e-6)), best
    raise ValueError(f"unknown volume rule {kind!r}")


def peak_slice(tumor: np.ndarray, smooth: int = 1) -> int | None:
    """The slice with the highest tumour probability (optionally averaged with its neighbours)."""
    valid = np.isfinite(tumor)
    if not valid.any():
        return None
    if smooth > 1:
        filled = np.where(valid, tumor, 0.0)
        kernel = np.ones(smooth)
        num = np.convolve(filled, kernel, mode="same")
        den = np.convolve(valid.astype(float), kernel, mode="same")
        score = np.where(valid, num / np.maximum(den, 1), -1.0)
    else:
        score = np.where(valid, tumor, -1.0)
    return int(np.argmax(score))


@dataclass
class VolumeAnswer:
    prediction: Prediction  # the volume's answer, worded like a slice's (brainscan.runtime.answer)
    score: float  # the rule's raw score
    slices_used: list[int]
    peak_slice: int | None
    rule: VolumeRule
    calibrated: bool


def answer(slices: SliceAnswers, rule: VolumeRule, model: Model) -> VolumeAnswer:
    """The volume's calibrated probability and class under the rule (see the module docstring)."""
    classes = list(model.classes)
    slice_threshold = model.tumor_threshold if model.tumor_threshold is not None else 0.5
    tumor = slices.tumor()
    score, used = rule_score(tumor, slices.slice_mm, rule.kind, rule.mm, slice_threshold)
    peak = peak_slice(tumor, rule.peak_smooth)
    calibrated = rule.chosen_on != VolumeRule.chosen_on
    p_tumor = 1 / (1 + math.exp(-(rule.a * _logit(score) + rule.b))) if used else 0.0
    threshold = rule.threshold if rule.threshold is not None else model.tumor_threshold
    if "notumor" in classes:
        basis = used or ([peak] if peak is not None else [])
        types = [c for c in classes if c != "notumor"]
        means = np.array([np.mean([slices.predictions[k].probabilities[c] for k in basis]) if basis else 1.0
                          for c in types])
        shares = means / means.sum() if means.sum() > 0 else np.full(len(types), 1 / max(len(types), 1))
        probs = {c: (1 - p_tumor if c == "notumor" else float(p_tumor * shares[types.index(c)])) for c in classes}
    else:  # no tumour-free class: the mean over the slices used
        basis = used or list(slices.predictions)
        probs = {c: float(np.mean([slices.predictions[k].probabilities[c] for k in basis])) for c in classes}
    ood = slices.predictions[peak].ood_score if peak is not None else None
    return VolumeAnswer(make_prediction(probs, threshold, ood), score, used, peak, rule, calibrated)
