"""The pixel limits every decode shares (images and DICOM) and the luminance both use. NumPy only."""

from __future__ import annotations

import numpy as np

MAX_PIXELS: int = 40_000_000  # header-declared width*height limit, checked before decoding
MAX_SIDE: int = 2048
MIN_SIDE: int = 16
MAX_FILE_BYTES: int = 512 * 1024 * 1024  # load_scan_path refuses larger files


def luma(rgb: np.ndarray, scale: float) -> np.ndarray:
    """ITU-R 601 luminance of an H x W x >=3 array, divided by ``scale`` (float32).

    Per-channel float32 arithmetic: ~10x faster than a float64 matmul on 12 MP.
    """
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    return (r * np.float32(0.299) + g * np.float32(0.587) + b * np.float32(0.114)) / np.float32(scale)
