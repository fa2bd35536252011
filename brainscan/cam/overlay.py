"""Heatmap overlays: pure NumPy/OpenCV, no TensorFlow."""

from __future__ import annotations

import cv2
import numpy as np

COLORMAPS = {
    "jet": cv2.COLORMAP_JET,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "turbo": cv2.COLORMAP_TURBO,
    "hot": cv2.COLORMAP_HOT,
}


def colorize(cam: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """cam in [0, 1] (H x W) -> uint8 RGB colour image."""
    if colormap not in COLORMAPS:
        raise ValueError(f"Unknown colour map {colormap!r}; choose one of {', '.join(COLORMAPS)}.")
    cam8 = np.clip(np.rint(np.nan_to_num(cam) * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(cam8, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)


def gradcam_overlay(image: np.ndarray, cam: np.ndarray, opacity: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """Blend a heatmap over a grayscale image (both H x W, [0, 1]); returns uint8 RGB.

    The heatmap's weight per pixel is opacity x cam, so cold regions leave the anatomy visible.
    """
    if image.shape[:2] != cam.shape[:2]:
        raise ValueError(f"Image {image.shape[:2]} and heatmap {cam.shape[:2]} differ in size.")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError("Opacity must be between 0 and 1.")
    gray = image if image.ndim == 2 else image[..., :3].mean(axis=2)
    if gray.dtype == np.uint8:
        gray = gray.astype(np.float32) / 255.0
    base = np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    color = colorize(cam, colormap).astype(np.float32) / 255.0
    alpha = (opacity * np.clip(np.nan_to_num(cam), 0, 1))[..., None].astype(np.float32)
    out = base * (1 - alpha) + color * alpha
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def peak(cam: np.ndarray) -> tuple[int, int]:
    """(x, y) = (column, row) of the heatmap's maximum."""
    row, col = np.unravel_index(int(np.argmax(np.nan_to_num(cam, nan=-1.0))), cam.shape)
    return int(col), int(row)


def to_png(img: np.ndarray) -> bytes:
    """uint8 grayscale or RGB -> PNG bytes (in memory)."""
    arr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
