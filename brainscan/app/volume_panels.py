"""The pictures and words of a volume's result, shared by the Scan page and the PDF report (no Streamlit here).

* :func:`strip_image`: the per-slice tumour probability along the slice axis (inferior to superior), the slice
  threshold, the slices that made the volume's score, the peak and the chosen slice.
* :func:`orthogonal_views`: axial (with the peak slice's heatmap), coronal and sagittal planes through the
  heatmap's peak, each labelled with its directions (brainscan.scans.volume.VIEW_LABELS) and the point marked.
* :func:`volume_lines`: the answer and how it was reached, in sentences (worded through runtime.answer).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np

from brainscan.formatting import short_pct
from brainscan.runtime.answer import answer_words
from brainscan.scans.volume import labelled


def volume_lines(result) -> list[str]:
    """result: brainscan.volume_check.VolumeResult."""
    p = result.prediction
    s = result.slices
    words = answer_words(p)
    lines = [words.sentence]
    if words.top_note:
        lines.append(words.top_note)
    counts = f"{s.n_slices} axial slices: {len(s.checked)} checked"
    if s.outside_head:
        counts += f", {len(s.outside_head)} outside the head (skipped)"
    if s.missing:
        counts += f", {len(s.missing)} missing from the series"
    lines.append(counts + ".")
    if result.answer.peak_slice is not None:
        k = result.answer.peak_slice
        lines.append(f"Peak slice: {k} (0 is the most inferior), its tumour probability "
                     f"{short_pct(s.predictions[k].tumor_probability)}.")
    ras = result.cam_peak_ras()
    if ras is not None:
        lines.append(f"The heatmap's peak on it lies at x {ras[0]:.1f}, y {ras[1]:.1f}, z {ras[2]:.1f} mm "
                     "(RAS+: toward the patient's right, front and top).")
    rule = result.answer.rule
    lines.append(f"Volume rule: {rule.describe()}" + ("." if result.answer.calibrated else
                                                       "; not yet calibrated on volumes for this model."))
    return lines


def strip_image(tumor: np.ndarray, threshold: float | None, peak: int | None, chosen: int | None = None,
                used: list[int] | None = None, width_in: float = 7.0, height_in: float = 1.6,
                dpi: int = 130) -> np.ndarray:
    """The per-slice probability strip as an RGB uint8 picture (matplotlib, Agg)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(tumor)
    with matplotlib.rc_context({"font.size": 7}):
        fig = Figure(figsize=(width_in, height_in), dpi=dpi)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0.07, 0.28, 0.91, 0.62))
        x = np.arange(n)
        vals = np.nan_to_num(tumor, nan=0.0)
        colours = ["#d0d0d0" if math.isnan(v) else "#c0392b" if threshold is not None and v >= threshold
                   else "#1f5fa8" for v in tumor]
        ax.bar(x, vals, width=0.85, color=colours)
        if used:
            ax.scatter(used, [1.04] * len(used), marker="v", s=10, color="#444444", clip_on=False)
        if threshold is not None:
            ax.axhline(threshold, color="#c0392b", lw=0.8, ls="--")
            ax.text(n - 0.5, threshold + 0.03, f"slice threshold {threshold:.2f}", ha="right", va="bottom",
                    color="#c0392b")
        if peak is not None:
            ax.axvline(peak, color="#000000", lw=0.8)
        if chosen is not None and chosen != peak:
            ax.axvline(chosen, color="#e69f00", lw=1.2)
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(0, 1)
        ax.set_ylabel("P(tumour)")
        ax.set_xlabel("axial slice, inferior (0) to superior; grey: not checked; black line: peak"
                      + ("; orange: shown below" if chosen is not None and chosen != peak else ""))
        canvas.draw()
        img = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return img


def strip_fast(tumor: np.ndarray, threshold: float | None, peak: int | None, chosen: int | None = None,
               used: list[int] | None = None, width: int = 960, height: int = 150) -> np.ndarray:
    """The same strip drawn with OpenCV (a few milliseconds, no matplotlib): what the Scan page shows."""
    n = max(len(tumor), 1)
    left, right, top, bottom = 34, 8, 14, 20
    img = np.full((height, width, 3), 255, np.uint8)
    plot_w, plot_h = width - left - right, height - top - bottom
    y_of = lambda v: int(round(top + plot_h * (1 - v)))  # noqa: E731
    cv2.rectangle(img, (left, top), (width - right, top + plot_h), (200, 200, 200), 1)
    for v in (0.0, 0.5, 1.0):
        cv2.putText(img, f"{v:.1f}", (2, y_of(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1, cv2.LINE_AA)
    step = plot_w / n
    for k, v in enumerate(tumor):
        x0, x1 = int(left + k * step + 0.08 * step), int(left + (k + 1) * step - 0.08 * step)
        if math.isnan(v):
            cv2.rectangle(img, (x0, top + plot_h - 3), (max(x1, x0 + 1), top + plot_h), (200, 200, 200), -1)
            continue
        colour = (192, 57, 43) if threshold is not None and v >= threshold else (31, 95, 168)
        cv2.rectangle(img, (x0, y_of(float(v))), (max(x1, x0 + 1), top + plot_h), colour, -1)
    for k in used or []:
        cx = int(left + (k + 0.5) * step)
        cv2.fillConvexPoly(img, np.array([[cx - 4, top - 9], [cx + 4, top - 9], [cx, top - 2]]), (68, 68, 68))
    if threshold is not None:
        y = y_of(threshold)
        for x in range(left, width - right, 10):
            cv2.line(img, (x, y), (min(x + 5, width - right), y), (192, 57, 43), 1)
    for k, colour, thick in ((peak, (0, 0, 0), 1), (chosen if chosen != peak else None, (230, 159, 0), 2)):
        if k is not None:
            cx = int(left + (k + 0.5) * step)
            cv2.line(img, (cx, top), (cx, top + plot_h), colour, thick)
    for k in sorted({0, n - 1, *(range(0, n, max(1, n // 10)))}):
        cv2.putText(img, str(k), (int(left + (k + 0.5) * step) - 4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (90, 90, 90), 1, cv2.LINE_AA)
    return img


def png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _mark(img: np.ndarray, x: float, y: float) -> np.ndarray:
    """A green cross with an open centre at (x, y), so the point itself stays visible."""
    out = img.copy()
    h, w = out.shape[:2]
    gap = max(3, min(h, w) // 40)
    arm = 2 * gap
    thick = max(1, min(h, w) // 200)
    xi, yi = int(round(x)), int(round(y))
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        cv2.line(out, (xi + gap * dx, yi + gap * dy), (xi + (gap + arm) * dx, yi + (gap + arm) * dy), (0, 255, 120),
                 thick, cv2.LINE_AA)
    return out


def orthogonal_views(volume, k: int, point: tuple[float, float] | None, axial_rgb: np.ndarray | None = None
                     ) -> list[tuple[np.ndarray, str]]:
    """Axial slice k (axial_rgb: its heatmap overlay, display geometry), and the coronal and sagittal planes through
    point (x, y on that slice; its centre when None), labelled and marked."""
    h, w = volume.display_shape
    x, y = point if point is not None else ((w - 1) / 2, (h - 1) / 2)
    col, row = volume.display_to_voxel(x, y)
    axial = axial_rgb if axial_rgb is not None else volume.slice_pixels(k)
    axial = labelled(axial, "axial")
    coronal = volume.coronal(int(round(row)))
    sagittal = volume.sagittal(int(round(col)))
    n = volume.n_slices
    cy = (n - 1 - k + 0.5) * coronal.shape[0] / n - 0.5
    cx = (col + 0.5) * coronal.shape[1] / volume.data.shape[2] - 0.5
    sy = (n - 1 - k + 0.5) * sagittal.shape[0] / n - 0.5
    sx = (row + 0.5) * sagittal.shape[1] / volume.data.shape[1] - 0.5
    return [(_mark(axial, x, y), f"Axial, slice {k}, with the heatmap"),
            (_mark(labelled(coronal, "coronal"), cx, cy), "Coronal, through the heatmap's peak"),
            (_mark(labelled(sagittal, "sagittal"), sx, sy), "Sagittal, through the heatmap's peak")]


@dataclass(frozen=True)
class VolumeReport:
    """What the PDF report adds for a volume (brainscan.app.report.volume_section)."""

    name: str
    lines: list[str]
    strip: np.ndarray
    views: list[tuple[np.ndarray, str]]


def volume_report(result, axial_overlay: np.ndarray | None) -> VolumeReport:
    """result: a VolumeResult whose peak slice was checked in full; axial_overlay: its heatmap overlay (RGB)."""
    a = result.answer
    k = a.peak_slice if a.peak_slice is not None else 0
    point = result.peak.heatmap.peak if result.peak is not None and result.peak.heatmap is not None else None
    strip = strip_image(result.slices.tumor(), _slice_threshold(result), a.peak_slice, None, a.slices_used)
    return VolumeReport(result.volume.name, volume_lines(result), strip,
                        orthogonal_views(result.volume, k, point, axial_overlay))


def _slice_threshold(result) -> float | None:
    """The threshold each slice is called tumour at (the model's), drawn on the strip."""
    preds = result.slices.predictions
    first = next(iter(preds.values()), None)
    return None if first is None else first.threshold
