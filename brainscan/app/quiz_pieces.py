"""The quiz's per-case pieces that are the same for every learner, made once: the clickable image's Vega-Lite
spec (no Altair validation on every rerun) and the reveal's outlined heatmap at display size. No Streamlit here.
"""

from __future__ import annotations

import copy
import functools

import cv2
import numpy as np

from brainscan.cam.overlay import gradcam_overlay
from brainscan.scans import cases as case_lib

GRID = 32  # click targets per side
SIDE = 420  # the clickable image's side in pixels
REVEAL_SIDE = 640  # the reveal's heatmap, longest side
CLICK_RGB = (0, 229, 255)


@functools.lru_cache(maxsize=64)
def _click_spec(case_id: str) -> dict:
    from brainscan.app.ui import thumbnail_url
    from brainscan.scans.io import load_scan

    case = case_lib.by_id(case_lib.load_library(), case_id)
    pixels = load_scan(case.data(), case.name).pixels
    h, w = pixels.shape[:2]
    scale = SIDE / max(h, w)
    x = {"field": "x", "type": "quantitative", "scale": {"domain": [0, w], "nice": False}, "axis": None}
    y = {"field": "y", "type": "quantitative", "scale": {"domain": [h, 0], "nice": False}, "axis": None}
    centres = [{"x": float((i + 0.5) * w / GRID), "y": float((j + 0.5) * h / GRID)}
               for j in range(GRID) for i in range(GRID)]
    return {
        "width": w * scale, "height": h * scale, "config": {"view": {"strokeWidth": 0}},
        "layer": [
            {"data": {"values": [{"x": w / 2, "y": h / 2, "url": thumbnail_url(pixels, side=max(h, w))}]},
             "mark": {"type": "image", "width": w * scale, "height": h * scale},
             "encoding": {"x": x, "y": y, "url": {"field": "url", "type": "nominal"}}},
            {"data": {"values": centres},  # invisible click targets
             "mark": {"type": "square", "size": (scale * w / GRID) ** 2, "opacity": 0.01, "color": "white"},
             "encoding": {"x": x, "y": y},
             "params": [{"name": "where", "select": {"type": "point", "fields": ["x", "y"], "on": "click",
                                                     "clear": False}}]},
        ],
    }


def click_spec(case: case_lib.Case, point: tuple[int, int] | None) -> dict:
    """The case's image with a grid of invisible click targets (a selection named 'where'), and the learner's
    click as a cyan cross."""
    spec = _click_spec(case.id)
    if point is None:
        return spec
    spec = {**spec, "layer": list(spec["layer"])}
    x, y = copy.deepcopy(spec["layer"][0]["encoding"]["x"]), copy.deepcopy(spec["layer"][0]["encoding"]["y"])
    spec["layer"].append({"data": {"values": [{"x": point[0], "y": point[1]}]},
                          "mark": {"type": "point", "shape": "cross", "size": 500, "color": "#00e5ff",
                                   "strokeWidth": 3, "filled": True},
                          "encoding": {"x": x, "y": y}})
    return spec


def reveal_overlay(result, mask: np.ndarray | None) -> np.ndarray:
    """The model's heatmap over the case at display size, with the true outline and the heatmap's peak."""
    from brainscan.app.ui import shrink

    overlay = gradcam_overlay(result.scan.pixels, result.heatmap.original, 0.45)
    if mask is not None:
        overlay = case_lib.draw_outline(overlay, mask, result.heatmap.peak)
    return shrink(overlay, REVEAL_SIDE)


def with_click(overlay: np.ndarray, point: tuple[int, int], original_shape: tuple[int, ...]) -> np.ndarray:
    """A copy of the display-size overlay with the learner's click (given in original pixels) as a cyan cross."""
    scale = overlay.shape[1] / original_shape[1]
    out = overlay.copy()
    cv2.drawMarker(out, (round(point[0] * scale), round(point[1] * scale)), CLICK_RGB, cv2.MARKER_TILTED_CROSS,
                   18, 3)
    return out
