"""The PDF report of one scan check, and its PNG panels (matplotlib's PDF backend; no TensorFlow).

One A4 page (a second where long text does not fit) holds the image, the preprocessing steps, the calibrated
probabilities, the chosen heatmap overlay, the uncertainty and familiarity checks, the model's name, version and
measured figures (with where it fails), the not-a-medical-device notice and the date. It never holds a patient
identifier: the scan's metadata comes from brainscan's allow-list (brainscan.scans.dicom), which never reads
identifying fields.
Text is laid out by measuring it (brainscan.app.report_layout): sections flow down the page and never overlap,
and every value is worded for a reader (0.80 x 0.80 mm, 0.46), never printed as a Python list or dict. The same
inputs give the same bytes (no creation date), so tests/test_report_snapshots.py can compare rendered pages.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from brainscan.app.report_layout import A4_PT, Flow, Style, clean, text_width, wrap
from brainscan.app.source_table import external_label
from brainscan.formatting import number
from brainscan.runtime.answer import answer_words

NOTICE = ("BrainScan is a research and teaching demo, not a medical device. This report must not be used to "
          "diagnose, treat or triage anyone.")


def model_version(card: dict, folder: Path | None) -> str:
    """The card's version; else when the folder was promoted; else 'unversioned'."""
    if card.get("version"):
        return str(card["version"])
    if folder is not None:
        try:
            promoted = json.loads((Path(folder) / "promoted.json").read_text())
            when = dt.datetime.fromtimestamp(float(promoted["promoted"]), dt.UTC).strftime("%Y-%m-%d")
            return f"promoted {when}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return "unversioned"


def _pct(v) -> str:
    return number(v, "pct")


def _num(v) -> str:
    return number(v)  # 3 digits: an ROC AUC of 0.996 is not 1.00


def _plain(v) -> str:
    """Any value as a person reads it: no brackets, braces or quotes, numbers rounded."""
    if v is None:
        return "n/a"
    if isinstance(v, str | bytes):
        return clean(v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return number(v, digits=2) if abs(float(v)) < 1000 else number(v, "int")
    if isinstance(v, dict):
        return "; ".join(f"{clean(str(k).replace('_', ' '))} {_plain(x)}" for k, x in v.items())
    try:
        items = list(v)
    except TypeError:
        return clean(v)
    numeric = items and all(isinstance(x, int | float | np.integer | np.floating) for x in items)
    return (" x " if numeric else ", ").join(_plain(x) for x in items)


def threshold_text(t) -> str:
    """The operating threshold, a number or the card's record of how it was chosen, in words."""
    if not isinstance(t, dict):
        return f"{number(t, digits=2)} on the tumour probability."
    text = f"{number(t.get('tumor_probability'), digits=2)} on the tumour probability"
    how = []
    if t.get("chosen_on"):
        how.append(f"chosen on the {_plain(t['chosen_on'])} split")
    if t.get("target_sensitivity") is not None:
        how.append(f"for a target sensitivity of {number(t['target_sensitivity'], 'pct', 0)}")
    there = [f"{k} {number(t[k], 'pct')}" for k in ("sensitivity", "specificity") if t.get(k) is not None]
    if how:
        text += " (" + " ".join(how) + ("; there " + ", ".join(there) if there else "") + ")"
    elif there:
        text += " (" + ", ".join(there) + ")"
    return text + "."


def model_rows(card: dict, folder: Path | None, uncertainty_settings: dict | None = None) -> list[tuple[str, str]]:
    """The model's name, version, threshold and measured figures as (label, text) rows (card.json and
    uncertainty.json); the other sources are source_rows, the limitations limitation_rows."""
    size = card.get("input_size")
    size = f"{size} x {size} px" if isinstance(size, int | float) else f"{_plain(size)} px"
    rows = [("Model", f"{_plain(card.get('name', 'n/a'))}, architecture {_plain(card.get('architecture', 'n/a'))}, "
                      f"version {model_version(card, folder)}; input {size}; classes "
                      f"{', '.join(_plain(c) for c in card.get('classes', []))}.")]
    if card.get("operating_threshold") is not None:
        rows.append(("Operating threshold", threshold_text(card["operating_threshold"])))
    s = (card.get("scores") or {}).get("test_dedup")
    if s:
        rows.append(("Test split", f"deduplicated, n={_plain(s.get('n'))}: accuracy {_pct(s.get('accuracy'))}, "
                                   f"tumour ROC AUC {_num(s.get('tumor_roc_auc'))}, calibration error (ECE) "
                                   f"{_num(s.get('ece'))}."))
    if uncertainty_settings:
        t = (uncertainty_settings.get("sets", {}).get("test_dedup") or {}).get("at_threshold") or {}
        if t:
            rows.append(("Deferral", f"answers {_pct(t.get('coverage'))} of the test split with accuracy "
                                     f"{_pct(t.get('accuracy_answered'))}; the rest are 'uncertain: needs a human'."))
    return rows


SOURCE_HEADER = ["Also measured on", "Images", "Tumour ROC AUC", "Accuracy",
                 "Heatmap peak in tumour"]


def source_rows(card: dict) -> list[list[str]]:
    """The card's external sets as table rows under SOURCE_HEADER ('' where a figure was not measured)."""
    rows = []
    for key, m in (card.get("external") or {}).items():
        if not isinstance(m, dict):
            continue
        rows.append([external_label(str(key)), _plain(m.get("n")),
                     "" if m.get("tumor_roc_auc") is None else _num(m["tumor_roc_auc"]),
                     "" if m.get("accuracy") is None else _pct(m["accuracy"]),
                     "" if m.get("pointing_game_hit_rate") is None else _pct(m["pointing_game_hit_rate"])])
    return rows


def limitation_rows(card: dict) -> list[tuple[str, str]]:
    return [("Where it fails", _plain(lim)) for lim in card.get("limitations") or []]


def model_lines(card: dict, folder: Path | None, uncertainty_settings: dict | None = None) -> list[str]:
    """Everything the report says about the model, one line each: 'label: text'."""
    lines = [f"{label}: {text}" for label, text in model_rows(card, folder, uncertainty_settings)]
    for row in source_rows(card):
        lines.append(f"Other source {row[0]}: " + ", ".join(f"{h[0].lower()}{h[1:]} {v}" for h, v in
                                                         zip(SOURCE_HEADER[1:], row[1:], strict=True) if v) + ".")
    return lines + [f"{label}: {text}" for label, text in limitation_rows(card)]


_META_LABELS = {"modality": "Modality", "series_description": "Series description", "body_part": "Body part",
                "photometric_interpretation": "Photometric interpretation", "transfer_syntax": "Transfer syntax",
                "bits_stored": "Bits stored", "window": "Display window"}


def _spacing(v) -> str:
    """DICOM PixelSpacing (row, column spacing in mm) -> '0.80 x 0.80 mm'."""
    try:
        values = [float(x) for x in (v if isinstance(v, list | tuple) else [v])]
    except (TypeError, ValueError):
        return _plain(v)
    return " x ".join(f"{x:.2f}" for x in values) + " mm"


def scan_rows(result) -> list[tuple[str, str]]:
    """The scan's safe metadata (brainscan.scans.dicom's allow-list) as (label, text) rows."""
    scan = result.scan
    meta = {k: v for k, v in (scan.metadata or {}).items() if v is not None and _plain(v) != ""}
    rows = []
    for key, label in (("modality", "Modality"), ("series_description", "Series description"),
                       ("body_part", "Body part")):
        if key in meta:
            rows.append((label, _plain(meta[key])))
    if meta.get("rows") and meta.get("columns"):
        rows.append(("Image size", f"{_plain(meta['columns'])} x {_plain(meta['rows'])} pixels (width x height)"))
    else:
        h, w = np.asarray(scan.pixels).shape[:2]
        rows.append(("Image size", f"{w} x {h} pixels (width x height)"))
    if "pixel_spacing" in meta:
        rows.append(("Pixel spacing", _spacing(meta["pixel_spacing"])))
    if "slice_thickness" in meta:
        rows.append(("Slice thickness", _spacing(meta["slice_thickness"])))
    if getattr(scan, "n_frames", 1) > 1:
        rows.append(("Frame shown", f"{scan.frame} of frames 0 to {scan.n_frames - 1}"))
    for key, v in meta.items():
        if key in ("modality", "series_description", "body_part", "rows", "columns", "pixel_spacing", "frames",
                   "slice_thickness"):
            continue
        rows.append((_META_LABELS.get(key, clean(str(key).replace("_", " ")).capitalize()), _plain(v)))
    return rows


def note_rows(result) -> list[tuple[str, str]]:
    """What reading and preparing the scan noted (a flipped slice, no brain outline found), as (label, text) rows."""
    notes = list(result.scan.notes) + list(getattr(result.prepared, "notes", None) or [])
    return [("Note", _plain(note)) for note in notes]


def _labelled(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Rows as printed: 'Label:', and a label repeated on consecutive rows on the first only."""
    return [("" if i and rows[i - 1][0] == label else f"{label}:", text) for i, (label, text) in enumerate(rows)]


PAGE_W, PAGE_H = A4_PT
TITLE, BODY, SMALL = Style(15, "bold"), Style(8), Style(7)
HEAD = Style(9.5, "bold")
LABEL = Style(7, "normal", "#444444")
RED = Style(7.5, "normal", "#a00000")
FOOT = Style(6.5, "normal", "#666666")
FINE, FINE_LABEL = Style(6.5), Style(6.5, "normal", "#444444")
GAP = 6.0  # between sections
LABEL_W = 110.0  # the label column of The scan and The model


def _image(flow: Flow, x: float, top: float, w: float, h: float, img: np.ndarray, caption: str, style: Style,
           caption_lines: int) -> None:
    """A picture of w x h points under caption_lines lines of centred caption, starting at top."""
    for i, line in enumerate(wrap(caption, w, style.size, style.weight)[:caption_lines]):
        flow.put(x + w / 2, top - i * style.pitch, line, style, ha="center")
    ax = flow.axes(x, top - caption_lines * style.pitch - 2 - h, w, h)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
    ax.axis("off")


def _pictures(flow: Flow, items: list[tuple[np.ndarray, str]], style: Style, height: float, gap: float) -> None:
    """A row of pictures with their captions, as wide as the page."""
    w = (flow.width - gap * (len(items) - 1)) / len(items)
    n = max(len(wrap(c, w, style.size, style.weight)) for _, c in items)
    top = flow.block(n * style.pitch + 2 + height)
    for i, (img, caption) in enumerate(items):
        _image(flow, flow.left + i * (w + gap), top, w, height, img, caption, style, n)


def _chart_height(p) -> float:
    """Title, bars, tick labels and axis label of _chart, in points."""
    return BODY.pitch + 2 + 13 * len(p.probabilities) + 2 * SMALL.pitch + 8


def _chart(flow: Flow, x: float, top: float, width: float, p) -> None:
    """The calibrated probabilities as bars, from top (_chart_height(p) points tall)."""
    names = list(p.probabilities)
    label_w = max(text_width(n, 7) for n in names) + 12
    flow.put(x + width / 2, top, "Calibrated probabilities", BODY, ha="center")
    bars_h = 13 * len(names)
    ax = flow.axes(x + label_w, top - BODY.pitch - 2 - bars_h, width - label_w - 6, bars_h)
    vals = [100 * p.probabilities[c] for c in names]
    ax.barh(names[::-1], vals[::-1], color=["#1f5fa8" if c == p.label else "#9bb7d4" for c in names[::-1]])
    for y, v in enumerate(vals[::-1]):
        inside = v > 80
        ax.text(v - 2 if inside else v + 2, y, f"{v:.1f}%", va="center", ha="right" if inside else "left",
                fontsize=7, color="white" if inside else "black")
    ax.set_xlim(0, 100)
    ax.set_xlabel("Calibrated probability (%)", fontsize=7)
    ax.tick_params(labelsize=7)


def volume_section(flow: Flow, volume) -> None:
    """A volume's part of the report (brainscan.app.volume_panels.VolumeReport): its answer and how it was reached,
    the per-slice strip, and the three views through the peak; the peak slice's own panels follow as for a scan."""
    flow.heading(f"The volume: {clean(volume.name)}", HEAD, keep_with=60)
    for line in volume.lines:
        flow.paragraph(line, BODY)
    flow.gap(4)
    h, w = volume.strip.shape[:2]
    top = flow.block(flow.width * h / w)
    ax = flow.axes(flow.left, top - flow.width * h / w, flow.width, flow.width * h / w)
    ax.imshow(volume.strip)
    ax.axis("off")
    flow.gap(4)
    _pictures(flow, [(img, caption) for img, caption in volume.views], Style(6.5), 150, 10)
    flow.gap(GAP)
    flow.heading("The peak slice, checked as a single scan", HEAD, keep_with=100)


def build_pdf(result, overlay: np.ndarray, overlay_caption: str, card: dict, folder: Path | None = None,
              uncertainty=None, uncertainty_settings: dict | None = None, when: dt.datetime | None = None,
              volume=None) -> bytes:
    """result: brainscan.check.CheckResult; overlay: the heatmap overlay shown (uint8 RGB, original geometry);
    uncertainty: a brainscan.runtime.uncertainty.Uncertainty or None. Usually one A4 page; text that does not fit
    (very long metadata, many sources) flows onto a second. The same inputs give the same bytes."""
    import matplotlib

    from brainscan.scans.io import to_uint8

    when = when or dt.datetime.now(dt.UTC)
    p = result.prediction
    from matplotlib.backends.backend_pdf import FigureCanvasPdf, PdfPages
    from matplotlib.figure import Figure

    words = answer_words(p)
    answer = [words.sentence] + ([words.top_note] if words.top_note else [])
    if np.isfinite(p.tumor_probability) and p.threshold is None:  # else the sentence gives it
        answer.append(f"Probability of any tumour: {100 * p.tumor_probability:.1f}%.")
    if uncertainty is not None:
        verdict = ("UNCERTAIN: NEEDS A HUMAN" if uncertainty.needs_human else
                   "below the deferral threshold" if uncertainty.threshold is not None else
                   "no deferral threshold set for this model")
        answer.append(f"Uncertainty (test-time augmentation): score {uncertainty.score:.3f}"
                      + (f", threshold {uncertainty.threshold:.3f}" if uncertainty.threshold is not None else "")
                      + f"; {verdict}; {uncertainty.views_agreeing} of {len(uncertainty.view_labels)} views agree.")
    if p.ood_score is not None:
        answer.append("Familiarity check: " + ("UNFAMILIAR IMAGE, do not trust this answer." if
                                               p.out_of_distribution else
                                               f"more unusual than {100 * p.ood_score:.0f}% of validation scans "
                                               "(flagged above 99%)."))

    def page() -> Figure:
        fig = Figure(figsize=(PAGE_W / 72, PAGE_H / 72))
        FigureCanvasPdf(fig)
        return fig

    # Type 3 fonts: subsetting TrueType (42) took seconds; pypdf still extracts Type 3 text.
    with matplotlib.rc_context({"pdf.fonttype": 3, "font.size": 8}):
        flow = Flow(page, top_margin=28, footer_height=22)
        flow.paragraph("BrainScan: scan check report", TITLE)
        flow.gap(2)
        header = [("Date", when.strftime("%Y-%m-%d %H:%M UTC")), ("File", result.scan.name or "scan")]
        side_by_side = text_width(header[1][1], BODY.size) < flow.width / 2 - 60  # else the file name gets a line
        flow.rows(_labelled(header), BODY, 36, Style(8, "normal", "#444444"), gap=0.5, columns=2 if side_by_side else 1)
        flow.gap(3)
        flow.paragraph(NOTICE, RED, indent=0)
        flow.gap(10)
        if volume is not None:  # a volume's report: its section, then the peak slice as a scan (volume_section)
            volume_section(flow, volume)

        _pictures(flow, [(to_uint8(result.scan.pixels), "The image"), (overlay, overlay_caption)], BODY, 140, 20)
        flow.gap(GAP)

        steps = result.prepared.steps[:6]
        if steps:
            flow.heading("Preprocessing steps (what the model was given, left to right)", HEAD, keep_with=100)
            _pictures(flow, [(img, caption) for caption, img in steps], Style(6.5), 52, 6)
            flow.gap(GAP)

        flow.heading("The answer", HEAD, keep_with=80)
        column = flow.left + 250  # the bars on the left, the answer's sentences on the right
        wrapped = [wrap(a, flow.right - column, BODY.size, indent=10) for a in answer]
        top = flow.block(max(_chart_height(p), sum(len(lines) * BODY.pitch + 2 for lines in wrapped)))
        _chart(flow, flow.left, top, 230, p)
        y = top
        for lines in wrapped:
            for i, line in enumerate(lines):
                flow.put(column + (10 if i else 0), y, line, BODY)
                y -= BODY.pitch
            y -= 2
        flow.gap(GAP)

        flow.heading("The scan", HEAD, keep_with=20)
        flow.rows(_labelled(scan_rows(result)), SMALL, LABEL_W, LABEL, columns=2)
        flow.rows(_labelled(note_rows(result)), SMALL, LABEL_W, LABEL)
        flow.gap(GAP)
        flow.heading("The model and how it was measured", HEAD, keep_with=20)
        flow.rows(_labelled(model_rows(card, folder, uncertainty_settings)), FINE, LABEL_W, FINE_LABEL, gap=1.0)
        sources = source_rows(card)
        if sources:
            flow.gap(2)
            flow.table(SOURCE_HEADER, sources, [235, 50, 75, 65, flow.width - 425], FINE, FINE_LABEL,
                       right=(1, 2, 3, 4), gap=0.5)
            flow.gap(2)
        flow.rows(_labelled(limitation_rows(card)), FINE, LABEL_W, FINE_LABEL, gap=1.0)

        stamp = when.strftime("%Y-%m-%d %H:%M UTC")
        flow.footers(lambda i, n: f"BrainScan scan check report, {stamp}. Research and teaching demo, not a medical "
                                  f"device. Page {i} of {n}.", FOOT)
        buf = io.BytesIO()
        # No creation date: the same inputs give the same file (and the page snapshots can be compared).
        with PdfPages(buf, metadata={"Title": "BrainScan scan check report", "Author": "",
                                     "Subject": "Research and teaching demo, not a medical device",
                                     "Creator": "BrainScan", "CreationDate": None}) as pdf:
            for fig in flow.pages:
                pdf.savefig(fig)
    return buf.getvalue()


def probability_png(probabilities: dict[str, float]) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"font.size": 9}):
        fig = Figure(figsize=(4.5, 1.8), dpi=150)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        names = list(probabilities)[::-1]
        ax.barh(names, [100 * probabilities[c] for c in names], color="#1f5fa8")
        ax.set_xlim(0, 100)
        ax.set_xlabel("Calibrated probability (%)")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    return buf.getvalue()


def panels_zip(result, overlay: np.ndarray, pdf: bytes | None = None) -> bytes:
    """The report's panels as PNG files (image, overlay, each preprocessing step, probabilities) in a zip."""
    from brainscan.cam.overlay import to_png
    from brainscan.scans.io import to_uint8

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("1_image.png", to_png(to_uint8(result.scan.pixels)))
        z.writestr("2_heatmap_overlay.png", to_png(overlay))
        for i, (_, img) in enumerate(result.prepared.steps, 1):
            z.writestr(f"3_step_{i}.png", to_png(img))
        z.writestr("4_probabilities.png", probability_png(result.prediction.probabilities))
        if pdf is not None:
            z.writestr("report.pdf", pdf)
    return buf.getvalue()
