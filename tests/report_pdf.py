"""Fixed inputs for the PDF report (no trained model: the same bytes on every run) and a reader of where its text
lies. Shared by tests/test_report.py and tests/test_report_snapshots.py.

    report_inputs("typical")   a DICOM-like scan of sample_images/lgg_glioma_flair.png, 6 other sources: one page
    report_inputs("extreme")   a 200-character file name, long free text and notes, 20 other sources, the
                               pixel spacing as a list and the operating threshold as the card's dict
    text_lines(pdf)            every line of text: page, text, font size, its ink box in points
    overlaps(lines)            the pairs of lines on one page whose ink boxes intersect
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WHEN = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
SPACING = [0.79861110448837, 0.79861110448837]  # as pydicom gives PixelSpacing
THRESHOLD = {"tumor_probability": 0.4579672679654244, "chosen_on": "validation", "target_sensitivity": 0.95,
             "sensitivity": 0.95, "specificity": 0.8976190476190476}  # as models/default/card.json holds it


def _card(n_sources: int, long_text: bool) -> dict:
    external = {
        "brats_flair": {"n": 198, "tumor_roc_auc": 0.9594, "pointing_game_hit_rate": 0.7481},
        "brats_t1c_upside_down": {"n": 198, "tumor_roc_auc": 0.942, "pointing_game_hit_rate": 0.5333},
        "yes_no_dedup": {"n": 137, "accuracy": 0.8467, "tumor_roc_auc": 0.9074},
        "lgg_test_flair_pointing": {"n": 141, "pointing_game_hit_rate": 0.5816},
        "lgg_institution_holdout_t1_pointing": {"n": 334, "pointing_game_hit_rate": 0.518},
        "brats_t1c": {"n": 198, "tumor_roc_auc": 0.9146, "pointing_game_hit_rate": 0.5111},
    }
    if n_sources > len(external):
        external = {f"made_up_source_number_{i:02d}_with_a_rather_long_name_{'x' * 20}":
                    {"n": 100 + i, "tumor_roc_auc": 0.9 + i / 1000, "accuracy": 0.8, "pointing_game_hit_rate": 0.5}
                    for i in range(n_sources)}
    limitations = ["Meningioma and pituitary tumors are learned from one collection only, so those two answers rest "
                   "on that collection's look.",
                   "The unfamiliar-scan warning fires on only 6-27% of other-source scans, so its silence is no "
                   "guarantee."]
    if long_text:
        limitations.append("A long limitation " * 30)
    return {"name": "BrainScan test card", "architecture": "efficientnet_lite0", "version": "3.1-test",
            "classes": ["glioma", "meningioma", "notumor", "pituitary"], "input_size": 128,
            "operating_threshold": THRESHOLD,
            "scores": {"test_dedup": {"n": 359, "accuracy": 0.93, "tumor_roc_auc": 0.9961, "ece": 0.0362}},
            "external": external, "limitations": limitations}


SETTINGS = {"sets": {"test_dedup": {"at_threshold": {"coverage": 0.93, "accuracy_answered": 0.964}}}}


def report_inputs(kind: str = "typical") -> dict:
    """Keyword arguments of brainscan.app.report.build_pdf, the same on every call."""
    from brainscan.cam.overlay import gradcam_overlay
    from brainscan.check import CheckResult
    from brainscan.runtime.inference import make_prediction
    from brainscan.runtime.uncertainty import Uncertainty
    from brainscan.scans.io import load_scan
    from brainscan.scans.preprocess import prepare

    extreme = kind == "extreme"
    name = ("a_very_long_upload_name_" * 9)[:196] + ".dcm" if extreme else "IM0001.dcm"
    scan = load_scan((ROOT / "sample_images" / "lgg_glioma_flair.png").read_bytes(), name)
    meta = {"modality": "MR", "series_description": "AX FLAIR", "body_part": "BRAIN", "pixel_spacing": SPACING,
            "slice_thickness": 5.0, "rows": 256, "columns": 256, "frames": 1,
            "photometric_interpretation": "MONOCHROME2", "transfer_syntax": "Explicit VR Little Endian",
            "bits_stored": 12, "window": "center 1000.5, width 2001 from the file (LINEAR)"}
    notes: tuple[str, ...] = ()
    if extreme:
        meta["series_description"] = ("AX T2 FLAIR FS PROPELLER post-contrast research protocol " * 4).strip()
        meta["window"] = "center 1000.5, width 2001 from the file (LINEAR) " * 3
        notes = ("The slice was stored back-of-head-up and is shown front-up. " * 4,
                 "A second, long free-text note from the scanner: " + "lorem ipsum dolor sit amet " * 12)
    scan = dataclasses.replace(scan, metadata=meta, notes=notes)
    prepared = prepare(scan.pixels, 128)
    h, w = scan.pixels.shape
    yy, xx = np.mgrid[0:h, 0:w]
    cam = np.exp(-(((yy - 0.35 * h) / (0.09 * h)) ** 2 + ((xx - 0.3 * w) / (0.11 * w)) ** 2)).astype(np.float32)
    overlay = gradcam_overlay(scan.pixels, cam, 0.4)
    prediction = make_prediction({"glioma": 0.62, "meningioma": 0.05, "notumor": 0.30, "pituitary": 0.03},
                                 THRESHOLD["tumor_probability"], 0.59)
    views = ["glioma"] * 6 + ["notumor"] * 2
    unc = Uncertainty(0.2134, "tta_confidence", 0.3750, False, views, [0.7] * 8, 1.0)
    result = CheckResult(scan, prepared, prediction, None, {}, unc)
    caption = "Heatmap: Grad-CAM for glioma, opacity 40%"
    if extreme:
        caption += ", drawn over the original image " + "with a long explanation " * 8
    return {"result": result, "overlay": overlay, "overlay_caption": caption,
            "card": _card(20 if extreme else 6, extreme), "folder": None, "uncertainty": unc,
            "uncertainty_settings": SETTINGS, "when": WHEN}


@dataclasses.dataclass(frozen=True)
class Line:
    page: int
    text: str
    size: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in points from the page's bottom-left corner


def _ink(text: str, size: float, bold: bool) -> tuple[float, float, float, float]:
    """The ink extent of text set at size in DejaVu Sans (matplotlib's glyph outlines), from its origin."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    prop = FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
    ext = TextPath((0, 0), text, size=size, prop=prop).get_extents()
    return float(ext.x0), float(ext.y0), float(ext.x1), float(ext.y1)


def text_lines(pdf: bytes) -> list[Line]:
    """Every text object of the PDF as it lies on the page: pypdf reports each one's origin (the matrix matplotlib
    sets per line) and font size; its box is the ink of that text at that size."""
    import pypdf

    out = []
    for number, page in enumerate(pypdf.PdfReader(io.BytesIO(pdf)).pages, 1):
        parts: dict[tuple[float, float, float, bool], list[tuple[float, str]]] = {}

        def visit(text, cm, tm, font, size, parts=parts):
            if text.strip():
                bold = "Bold" in str((font or {}).get("/BaseFont", ""))
                x = cm[4] + tm[4] * cm[0]
                parts.setdefault((round(cm[4], 2), round(cm[5], 2), float(size), bold), []).append((x, text))

        page.extract_text(visitor_text=visit)
        for (x0, y0, size, bold), pieces in parts.items():
            # pypdf may put a newline between pieces, or a space before a text object; matplotlib's lines never
            # start or end with white space.
            text = "".join(t.replace("\n", "") for _, t in sorted(pieces)).strip()
            ix0, iy0, ix1, iy1 = _ink(text, size, bold)
            out.append(Line(number, text, size, (x0 + ix0, y0 + iy0, x0 + ix1, y0 + iy1)))
    return out


def overlaps(lines: list[Line], slack: float = 0.2) -> list[tuple[Line, Line]]:
    """Pairs of lines on one page whose ink boxes intersect by more than slack points both ways."""
    bad = []
    for i, a in enumerate(lines):
        for b in lines[i + 1:]:
            if a.page != b.page:
                continue
            w = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
            h = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
            if w > slack and h > slack:
                bad.append((a, b))
    return bad
