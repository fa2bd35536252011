"""The one-page PDF report and its PNG panels (brainscan.app.report): the file opens, holds what it should, and
never a patient identifier."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import zipfile

import cv2
import numpy as np
import pytest

from brainscan.app import report
from brainscan.cam.overlay import gradcam_overlay
from brainscan.check import check_bytes
from brainscan.runtime import uncertainty
from brainscan.runtime.answer import answer_words
from brainscan.scans.synthetic import phantom

pypdf = pytest.importorskip("pypdf")
SECRETS = ("Doe", "DOE-4711", "19800101", "Jane")


@pytest.fixture(scope="module")
def model(tiny_model):
    from brainscan.runtime.inference import load_model

    return load_model(tiny_model)


def _dicom(make_dicom) -> bytes:
    img = np.rint(phantom(96, lesion=True, seed=3)[0] * 1000).astype(np.uint16)
    return make_dicom(img, WindowCenter=500, WindowWidth=1000, InstitutionName="Secret Hospital Doe")


def _pdf(model, data: bytes, name: str) -> tuple[bytes, object]:
    result = check_bytes(model, data, name)
    overlay = gradcam_overlay(result.scan.pixels, result.heatmap.original, 0.4)
    u = uncertainty.assess(model, result.prepared.input, {"signal": "tta_spread", "threshold": 0.5})
    pdf = report.build_pdf(result, overlay, "Heatmap: Grad-CAM, opacity 40%", model.card, model.path, u, None,
                           when=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC))
    return pdf, result


def test_pdf_is_one_page_with_everything_and_no_identifier(model, make_dicom) -> None:
    pdf, result = _pdf(model, _dicom(make_dicom), "IM0001")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    flat = " ".join(text.split())
    for needed in ("BrainScan: scan check report", "not a medical device", "Date: 2026-01-02 03:04 UTC",
                   "Calibrated probabilities", "Preprocessing steps", str(model.card["name"]),
                   "Uncertainty (test-time augmentation)", "threshold 0.500", "modality: MR"):
        assert needed in flat, needed
    p = result.prediction
    assert answer_words(p).sentence in flat
    for secret in SECRETS:
        assert secret not in text
    meta = reader.metadata
    assert "Doe" not in str(dict(meta or {}))
    assert len(reader.pages[0].images) >= 3  # the image, the overlay, the preprocessing steps


def test_model_lines_say_where_it_fails() -> None:
    card = {"name": "m", "architecture": "compact", "classes": ["glioma", "notumor"], "version": "2.1",
            "operating_threshold": 0.3, "scores": {"test_dedup": {"n": 10, "accuracy": 0.9, "tumor_roc_auc": 0.95,
                                                                   "ece": 0.02}},
            "external": {"brats_flair": {"n": 5, "tumor_roc_auc": 0.4, "pointing_game_hit_rate": 0.2}},
            "limitations": ["Misses FLAIR tumours."]}
    text = "\n".join(report.model_lines(card, None, {"sets": {"test_dedup": {"at_threshold": {
        "coverage": 0.8, "accuracy_answered": 0.99}}}}))
    for needed in ("version 2.1", "Operating threshold on the tumour probability: 0.3", "accuracy 90.0%",
                   "brats flair: n=5, tumour ROC AUC 0.40", "heatmap peak in tumour 20.0%",
                   "Where it fails: Misses FLAIR tumours.", "answers 80.0% of the test split with accuracy 99.0%"):
        assert needed in text, needed
    assert report.model_version({}, None) == "unversioned"


def test_panels_zip_holds_pngs_and_the_pdf(model) -> None:
    img = np.rint(phantom(128, lesion=True, seed=5)[0] * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", img)
    result = check_bytes(model, buf.tobytes(), "a.png")
    overlay = gradcam_overlay(result.scan.pixels, result.heatmap.original, 0.4)
    data = report.panels_zip(result, overlay, b"%PDF-1.4 test")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        assert {"1_image.png", "2_heatmap_overlay.png", "4_probabilities.png", "report.pdf"} <= set(names)
        for n in names:
            if n.endswith(".png"):
                assert cv2.imdecode(np.frombuffer(z.read(n), np.uint8), cv2.IMREAD_UNCHANGED) is not None, n
        assert sum(n.startswith("3_step_") for n in names) == len(result.prepared.steps)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed")
def test_pdf_renders_with_pdftoppm(model, make_dicom, tmp_path) -> None:
    pdf, _ = _pdf(model, _dicom(make_dicom), "IM0001")
    (tmp_path / "r.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(tmp_path / "r.pdf"), str(tmp_path / "r")],
                   check=True, timeout=60)
    page = cv2.imread(str(tmp_path / "r.png"))
    assert page is not None and page.shape[0] > page.shape[1]  # A4 portrait
    assert page.std() > 20  # not a blank page
