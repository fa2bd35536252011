"""A one-page PDF report of one scan check, and its PNG panels (matplotlib's PDF backend; no TensorFlow).

The page holds the image, the preprocessing steps, the calibrated probabilities, the chosen heatmap
overlay, the uncertainty and familiarity checks, the model's name, version and measured figures (with
where it fails), the not-a-medical-device notice and the date. It never holds a patient identifier: the
scan's metadata comes from brainscan's allow-list (brainscan.dicom), which never reads identifying fields.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import textwrap
import zipfile
from pathlib import Path

import numpy as np

from brainscan.formatting import number
from brainscan.runtime.answer import answer_words

NOTICE = ("BrainScan is a research and teaching demo, not a medical device. This report must not be used to "
          "diagnose, treat or triage anyone.")
A4 = (8.27, 11.69)


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
    return number(v, digits=2)


def model_lines(card: dict, folder: Path | None, uncertainty_settings: dict | None = None) -> list[str]:
    """The model's name, version and measured figures as short lines (from card.json and uncertainty.json)."""
    lines = [f"Model: {card.get('name', 'n/a')} ({card.get('architecture', 'n/a')}), version "
             f"{model_version(card, folder)}; input {card.get('input_size')} px; classes "
             f"{', '.join(card.get('classes', []))}."]
    if card.get("operating_threshold") is not None:
        lines.append(f"Operating threshold on the tumour probability: {card['operating_threshold']}.")
    s = (card.get("scores") or {}).get("test_dedup")
    if s:
        lines.append(f"Deduplicated test split (n={s.get('n')}): accuracy {_pct(s.get('accuracy'))}, tumour ROC AUC "
                     f"{_num(s.get('tumor_roc_auc'))}, calibration error (ECE) {_num(s.get('ece'))}.")
    for key, m in (card.get("external") or {}).items():
        if not isinstance(m, dict):
            continue
        parts = [f"n={m.get('n')}"]
        if m.get("tumor_roc_auc") is not None:
            parts.append(f"tumour ROC AUC {_num(m['tumor_roc_auc'])}")
        if m.get("accuracy") is not None:
            parts.append(f"accuracy {_pct(m['accuracy'])}")
        if m.get("pointing_game_hit_rate") is not None:
            parts.append(f"heatmap peak in tumour {_pct(m['pointing_game_hit_rate'])}")
        lines.append(f"Other source {key.replace('_', ' ')}: " + ", ".join(parts) + ".")
    if uncertainty_settings:
        t = (uncertainty_settings.get("sets", {}).get("test_dedup") or {}).get("at_threshold") or {}
        if t:
            lines.append(f"Deferral ('uncertain: needs a human'): answers {_pct(t.get('coverage'))} of the test split "
                         f"with accuracy {_pct(t.get('accuracy_answered'))}.")
    for lim in card.get("limitations") or []:
        lines.append(f"Where it fails: {lim}")
    return lines


def _wrap(lines: list[str], width: int) -> str:
    return "\n".join(textwrap.fill(line, width, subsequent_indent="  ") for line in lines)


def _image_axes(fig, rect, img, title: str, fontsize: float = 8) -> None:
    ax = fig.add_axes(rect)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")


def build_pdf(result, overlay: np.ndarray, overlay_caption: str, card: dict, folder: Path | None = None,
              uncertainty=None, uncertainty_settings: dict | None = None, when: dt.datetime | None = None) -> bytes:
    """result: brainscan.check.CheckResult; overlay: the heatmap overlay shown (uint8 RGB, original geometry);
    uncertainty: a brainscan.runtime.uncertainty.Uncertainty or None."""
    import matplotlib

    from brainscan.scans.io import to_uint8

    when = when or dt.datetime.now(dt.UTC)
    p = result.prediction
    from matplotlib.backends.backend_pdf import FigureCanvasPdf, PdfPages
    from matplotlib.figure import Figure

    # Type 3 fonts: subsetting TrueType (42) took seconds; pypdf still extracts Type 3 text.
    with matplotlib.rc_context({"pdf.fonttype": 3, "font.size": 8}):
        fig = Figure(figsize=A4)
        FigureCanvasPdf(fig)
        fig.text(0.06, 0.965, "BrainScan: scan check report", fontsize=15, weight="bold")
        fig.text(0.06, 0.948, f"Date: {when.strftime('%Y-%m-%d %H:%M UTC')}   File: {result.scan.name or 'scan'}",
                 fontsize=8)
        fig.text(0.06, 0.928, _wrap([NOTICE], 110), fontsize=8, color="#a00000", va="top")

        _image_axes(fig, [0.05, 0.595, 0.43, 0.27], to_uint8(result.scan.pixels), "The image")
        _image_axes(fig, [0.52, 0.595, 0.43, 0.27], overlay, _wrap([overlay_caption], 60))

        steps = result.prepared.steps[:6]
        if steps:
            fig.text(0.06, 0.572, "Preprocessing steps (what the model was given, left to right)", fontsize=9,
                     weight="bold")
            w = 0.88 / len(steps)
            for i, (caption, img) in enumerate(steps):
                _image_axes(fig, [0.06 + i * w, 0.43, w * 0.92, 0.1], img, _wrap([caption], 26), 6.5)

        ax = fig.add_axes([0.2, 0.305, 0.3, 0.085])
        names = list(p.probabilities)
        vals = [100 * p.probabilities[c] for c in names]
        ax.barh(names[::-1], vals[::-1], color=["#1f5fa8" if c == p.label else "#9bb7d4" for c in names[::-1]])
        for y, v in enumerate(vals[::-1]):
            ax.text(min(v + 2, 88), y, f"{v:.1f}%", va="center", fontsize=7)
        ax.set_xlim(0, 100)
        ax.set_xlabel("Calibrated probability (%)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_title("Calibrated probabilities", fontsize=8)

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
        fig.text(0.55, 0.395, _wrap(answer, 58), fontsize=8, va="top")

        meta = [f"{k.replace('_', ' ')}: {v}" for k, v in result.scan.metadata.items() if v not in (None, "")]
        fig.text(0.06, 0.252, "The scan", fontsize=9, weight="bold")
        fig.text(0.06, 0.24, _wrap(["; ".join(meta[:10])] + list(result.scan.notes)[:2], 125), fontsize=7, va="top")
        fig.text(0.06, 0.205, "The model and how it was measured", fontsize=9, weight="bold")
        lines = model_lines(card, folder, uncertainty_settings)
        text = _wrap(lines, 125).split("\n")
        fig.text(0.06, 0.192, "\n".join(text[:24]) + ("\n  ..." if len(text) > 24 else ""), fontsize=6.5,
                 va="top", linespacing=1.25)
        buf = io.BytesIO()
        with PdfPages(buf, metadata={"Title": "BrainScan scan check report", "Author": "",
                                     "Subject": "Research and teaching demo, not a medical device",
                                     "Creator": "BrainScan"}) as pdf:
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
