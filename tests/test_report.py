"""The PDF report and its PNG panels (brainscan.app.report): the file opens, holds what it should, never a patient
identifier, never a Python repr, and no two lines of its text overlap, whatever the length of the inputs
(tests/report_pdf.py builds them; tests/test_report_snapshots.py compares the rendered pages)."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import zipfile

import cv2
import numpy as np
import pytest
from report_pdf import SPACING, THRESHOLD, overlaps, report_inputs, text_lines

from brainscan.app import report, report_layout
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
                   "Uncertainty (test-time augmentation)", "threshold 0.500", "Modality: MR"):
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
    for needed in ("version 2.1", "Operating threshold: 0.30 on the tumour probability.", "accuracy 90.0%",
                   "brats2013 FLAIR: images 5, tumour ROC AUC 0.400, heatmap peak in tumour 20.0%",
                   "Where it fails: Misses FLAIR tumours.", "answers 80.0% of the test split with accuracy 99.0%"):
        assert needed in text, needed
    assert report.model_version({}, None) == "unversioned"


def test_values_read_as_words_not_python() -> None:
    assert report.threshold_text(THRESHOLD) == (
        "0.46 on the tumour probability (chosen on the validation split for a target sensitivity of 95%; there "
        "sensitivity 95.0%, specificity 89.8%).")
    assert report.threshold_text(0.4579) == "0.46 on the tumour probability."
    assert report._spacing(SPACING) == "0.80 x 0.80 mm"
    assert report._spacing(5) == "5.00 mm"
    assert report._plain([np.float64(0.5), 2]) == "0.50 x 2"
    assert report._plain({"a_b": 1, "c": [1, 2]}) == "a b 1; c 1 x 2"
    assert report._plain(["AX", "T1"]) == "AX, T1"
    assert report._plain(b"T1\nAX\x00") == "T1 AX"
    assert report._plain(None) == "n/a" and report._plain(np.bool_(True)) == "yes"


def test_wrap_fits_every_line_and_cuts_words_longer_than_a_line() -> None:
    text = "short words then " + "x" * 300 + " and more words " * 10
    lines = report_layout.wrap(text, 200, 8, indent=10)
    assert all(report_layout.text_width(line, 8) <= (200 if i == 0 else 190) for i, line in enumerate(lines))
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert report_layout.wrap("", 100, 8) == [""]
    assert report_layout.clean("a\n\tb\x00  c") == "a b c"


def _reads_cleanly(pdf: bytes) -> tuple[str, list]:
    """The PDF's text (one string) and lines; no repr, nothing overlapping, everything inside the page."""
    text = " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    for repr_mark in ("{", "}", "[", "]", "'tumor_probability'", "None", "nan", "0.7986", "0.45796"):
        assert repr_mark not in text, repr_mark
    lines = text_lines(pdf)
    bad = overlaps(lines)
    assert not bad, [(a.text[:40], b.text[:40]) for a, b in bad[:5]]
    w, h = report_layout.A4_PT
    for line in lines:
        x0, y0, x1, y1 = line.box
        assert 20 <= x0 and x1 <= w - 20 and 10 <= y0 and y1 <= h - 10, (line.text[:40], line.box)
    return text, lines


def test_typical_report_is_one_page_that_reads_cleanly() -> None:
    pdf = report.build_pdf(**report_inputs("typical"))
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 1
    text, _ = _reads_cleanly(pdf)
    for needed in ("File: IM0001.dcm", "Pixel spacing: 0.80 x 0.80 mm", "Slice thickness: 5.00 mm",
                   "Operating threshold: 0.46 on the tumour probability", "tumour ROC AUC 0.996",
                   "brats2013 FLAIR 198 0.959 74.8%", "Page 1 of 1", "not a medical device"):
        assert needed in text, needed


def test_extreme_inputs_flow_onto_a_second_page_without_overlapping() -> None:
    """A 200-character file name, long free text, long notes, 20 other sources, the spacing as a list and the
    threshold as the card's dict: wrapped, pushed down onto page 2, never on top of each other."""
    inputs = report_inputs("extreme")
    assert len(inputs["result"].scan.name) == 200 and len(inputs["card"]["external"]) == 20
    pdf = report.build_pdf(**inputs)
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 2
    text, lines = _reads_cleanly(pdf)
    assert "Page 1 of 2" in text and "Page 2 of 2" in text and "0.80 x 0.80 mm" in text
    joined = "".join(line.text for line in lines)
    assert inputs["result"].scan.name in joined  # the whole file name, cut into lines
    for i in range(20):
        assert f"made up source number {i:02d}" in text, i
    assert "lorem ipsum dolor sit amet lorem" in text and "A long limitation" in text


def test_the_same_inputs_give_the_same_bytes() -> None:
    a, b = (report.build_pdf(**report_inputs("typical")) for _ in range(2))
    assert a == b and b"CreationDate" not in a


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
