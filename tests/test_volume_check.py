"""One answer per volume (issue 20): every head slice through the slice check in one batch, the volume rule, the peak
slice and its heatmap's peak in RAS+ millimetres. A fake model that calls bright blobs tumour and whose heatmap is
the blob keeps these fast; tests/test_cli_volumes.py runs the real command line on a trained model."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from brainscan.runtime import volume as rv
from brainscan.scans.nifti import read_nifti
from brainscan.scans.studies import sort_files
from brainscan.scans.synthetic import dicom_series, nifti_bytes
from brainscan.volume_check import check_volume


@dataclass
class BlobModel:
    """Tumour (glioma) where the prepared slice holds a bright blob; its CAM is that blob."""

    path: Path = Path("/nonexistent")
    card: dict = field(default_factory=dict)
    ood: dict = field(default_factory=dict)
    classes: list = field(default_factory=lambda: ["glioma", "meningioma", "notumor", "pituitary"])
    size: int = 64
    temperature: float = 1.0
    tumor_threshold: float | None = 0.5
    calls: list = field(default_factory=list)

    @staticmethod
    def _blob(x: np.ndarray) -> np.ndarray:
        bright = (x[..., 0] > 0.97).astype(np.uint8)
        bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        return cv2.GaussianBlur(bright.astype(np.float32), (0, 0), 3)

    def features_and_logits(self, batch):
        self.calls.append(len(batch))
        score = np.array([self._blob(x).max() for x in batch])
        logits = np.full((len(batch), 4), -5.0, np.float32)
        logits[:, 2] = 0.0  # notumor
        logits[:, 0] = 40 * (score - 0.15)  # glioma
        return np.zeros((len(batch), 2), np.float32), logits

    def cam(self, x, class_index, method="gradcam", layer=None):
        return self._blob(x)


LESION = (14, 40, 80)  # (slice, row, col) of the phantom's lesion, display order


def head(slices: int, size: int, lesion: tuple[int, int, int] | None = None, radius: int = 9,
         seed: int = 0) -> np.ndarray:
    """uint16 [slice, row, col]: an ellipsoid of grey tissue (no skull: the fake model keys on the brightest
    pixels) with a bright ball at lesion (display order)."""
    k, y, x = np.meshgrid(np.arange(slices), np.arange(size), np.arange(size), indexing="ij")
    c = (size - 1) / 2
    d = ((k - (slices - 1) / 2) / (slices * 0.5)) ** 2 + ((y - c) / (size * 0.42)) ** 2 + ((x - c) / (size * 0.36)) ** 2
    vol = np.where(d < 1, 450.0, 0.0)
    if lesion is not None:
        vol[((k - lesion[0]) * 2) ** 2 + (y - lesion[1]) ** 2 + (x - lesion[2]) ** 2 < radius**2] = 1000.0
    vol += np.random.default_rng(seed).normal(0, 10, vol.shape) * (vol > 0)
    return np.clip(vol, 0, 1000).astype(np.uint16)


def phantom_nifti(lesion=LESION) -> tuple[bytes, np.ndarray]:
    """A 24 x 128 x 128 head with 3 empty slices below and above (30 in all), stored LPS with 1.5 x 1.5 x 3 mm
    voxels; returns the file and its affine."""
    d = np.pad(head(24, 128, (lesion[0] - 3, *lesion[1:]), seed=1), ((3, 3), (0, 0), (0, 0)))
    v = np.ascontiguousarray(d.transpose(2, 1, 0)[:, :, :])  # [col, row, slice]: toward L, P, S
    aff = np.diag([-1.5, -1.5, 3.0, 1.0])  # LPS voxel order in RAS+
    aff[:3, 3] = [90.0, 80.0, -40.0]
    return nifti_bytes(v, aff), aff


def test_a_lesion_volume_is_found_on_its_slice_and_placed_in_ras_millimetres():
    data, aff = phantom_nifti()
    model = BlobModel()
    result = check_volume(model, read_nifti(data, "head.nii.gz"), "gradcam", tta=False)
    out = result.as_dict()
    json.dumps(out)
    assert out["kind"] == "volume" and out["label"] == "glioma" and result.prediction.is_tumor
    assert out["slices"] == 30 and len(out["slice_tumor_probability"]) == 30
    assert out["slices_checked"] + out["slices_outside_head"] + out["slices_missing"] == 30
    assert out["slices_outside_head"] >= 6  # the empty slices (and the thinnest tips of the head)
    assert abs(out["peak_slice"] - LESION[0]) <= 2
    k, r, c = LESION
    expected = aff @ [c, r, k, 1]  # the stored voxel [col, row, slice] of the lesion's centre
    assert np.linalg.norm(np.array(out["cam_peak_ras_mm"]) - expected[:3]) <= 2 * math.sqrt(1.5**2 + 1.5**2 + 3**2)
    probs = out["slice_tumor_probability"]
    assert max(p for p in probs if p is not None) == pytest.approx(probs[out["peak_slice"]])
    # every slice in one batched call (batch 32 holds them all), then the peak slice once in full
    assert model.calls[0] == out["slices_checked"]


def test_a_volume_without_a_lesion_is_tumour_free():
    d = head(20, 96, seed=2)
    files = dicom_series(d, first=(-48, -48, -30), spacing=(1.0, 1.0), step=3.0)
    result = check_volume(BlobModel(), sort_files(files)[0].load(), "gradcam", tta=False)
    assert result.prediction.label == "notumor" and not result.prediction.is_tumor
    assert result.peak is not None  # the peak slice is still checked in full


def test_a_missing_slice_is_counted_and_never_checked():
    d = head(20, 96, (10, 30, 50), radius=8, seed=3)
    files = dicom_series(d, step=2.0)
    del files[7]
    result = check_volume(BlobModel(), sort_files(files)[0].load(), None)
    assert result.slices.missing == [7]
    assert result.as_dict()["slice_tumor_probability"][7] is None
    assert "cam_peak_ras_mm" not in result.as_dict()


# --- the rule -------------------------------------------------------------------------------------------------

def test_rule_scores():
    t = np.array([np.nan, 0.1, 0.9, 0.8, 0.2, 0.95, np.nan])
    assert rv.rule_score(t, 5.0, "max", 0, 0.5) == (0.95, [5])
    score, used = rv.rule_score(t, 5.0, "top_mm", 10.0, 0.5)  # 10 mm of 5 mm slices: the top 2
    assert used == [2, 5] and score == pytest.approx((0.9 + 0.95) / 2)
    score, used = rv.rule_score(t, 2.0, "top_mm", 5.0, 0.5)  # 2.5 slices -> 3
    assert used == [2, 3, 5]
    score, used = rv.rule_score(t, 5.0, "run_mm", 20.0, 0.5)  # the longest run above 0.5: slices 2-3, 10 mm
    assert used == [2, 3] and score == pytest.approx(0.5)
    assert rv.peak_slice(t) == 5
    t = np.array([np.nan, 0.1, 0.9, 0.85, 0.8, 0.1, 0.95, 0.1])
    assert rv.peak_slice(t) == 6
    assert rv.peak_slice(t, 3) == 3  # averaged with its neighbours: (0.9, 0.85, 0.8) beats (0.1, 0.95, 0.1)
    assert rv.rule_score(np.full(4, np.nan), 1.0, "top_mm", 5, 0.5) == (0.0, [])


def test_the_rule_is_read_from_the_model_folder(tmp_path):
    assert rv.read_rule(tmp_path) == rv.VolumeRule()
    rule = rv.VolumeRule("run_mm", 15.0, 2.0, -1.0, 0.4, 0.2, 3, "validation volumes (2 tumour, 2 tumour-free)")
    rv.write_rule(tmp_path, rule, {"sets": {}})
    assert rv.read_rule(tmp_path) == rule
    assert "longest run" in rule.describe()


def test_the_calibrated_probability_and_threshold_decide_the_answer(tmp_path):
    data, _ = phantom_nifti()
    volume = read_nifti(data, "head.nii.gz")
    rv.write_rule(tmp_path, rv.VolumeRule("top_mm", 10.0, 1.0, -30.0, 0.5, chosen_on="a test"))
    strict = check_volume(BlobModel(path=tmp_path), volume, None)
    assert strict.prediction.label == "notumor"  # the calibration pulls every score below 0.5
    assert strict.prediction.threshold == pytest.approx(0.5)
    assert "a test" in strict.as_dict()["rule"]


def test_choosing_the_rule_on_validation_volumes():
    from brainscan.evaluation.volumes import Case, Checked, choose_rule

    def checked(tumour: bool, probs: list[float], extent=None) -> Checked:
        case = Case("x", "s", "val", tumour, lambda: None, extent)
        return Checked(case, np.array(probs), 5.0, len(probs), 0)

    val = [checked(True, [0.1, 0.8, 0.9, 0.85, 0.1], (1, 3)), checked(True, [0.2, 0.7, 0.75, 0.1, 0.1], (1, 2)),
           checked(False, [0.1, 0.9, 0.1, 0.1, 0.1]), checked(False, [0.2, 0.3, 0.2, 0.1, 0.1])]
    rule, table = choose_rule(val, 0.5, 0.15)
    assert {row["rule"] for row in table} == {"max", "top_mm", "run_mm"}
    assert rule.kind != "max"  # one bright slice of a tumour-free volume fools the maximum
    best = next(row for row in table if row["rule"] == rule.kind and row["mm"] == rule.mm)
    assert best["balanced_accuracy"] == 1.0
    assert "2 tumour, 2 tumour-free" in rule.chosen_on
    assert replace(rule, measured={}).peak_smooth in (1, 3)


def test_the_volume_report_holds_the_answer_the_strip_and_the_peak_slice():
    from io import BytesIO

    from pypdf import PdfReader

    from brainscan.app import report
    from brainscan.app.volume_panels import volume_report
    from brainscan.cam.overlay import gradcam_overlay

    data, _ = phantom_nifti()
    result = check_volume(BlobModel(), read_nifti(data, "head.nii.gz"), "gradcam", tta=False)
    overlay = gradcam_overlay(result.peak.scan.pixels, result.peak.heatmap.original, 0.4)
    section = volume_report(result, overlay)
    assert [c.split(",")[0] for _, c in section.views] == ["Axial", "Coronal", "Sagittal"]
    assert section.strip.ndim == 3 and section.strip.shape[1] > section.strip.shape[0]
    pdf = report.build_pdf(result.peak, overlay, "Heatmap: Grad-CAM", {"name": "blob"}, None, volume=section)
    text = " ".join(p.extract_text() for p in PdfReader(BytesIO(pdf)).pages)
    assert "The volume: head.nii.gz" in text and "30 axial slices" in text
    assert "The peak slice, checked as a single scan" in text and "Preprocessing steps" in text
    assert "RAS+" in text
