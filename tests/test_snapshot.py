"""The snapshot comparison itself (tests/snapshot.py): rendering noise passes, a layout change fails."""

from __future__ import annotations

import cv2
import numpy as np
from snapshot import CHANGED_LEVEL, MAX_CHANGED_SHARE, MAX_MEAN_DIFFERENCE, difference, reduced


def page_image() -> np.ndarray:
    img = np.full((400, 300), 255, np.uint8)
    for k in range(12):  # lines of "text" under a heading
        cv2.putText(img, f"line {k} of the report", (10, 60 + 25 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1)
    cv2.putText(img, "The scan", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    return img


def compared(a: np.ndarray, b: np.ndarray) -> dict:
    """As assert_snapshot compares two screenshots: both PNG-encoded, then reduced."""
    return difference(reduced(cv2.imencode(".png", a)[1].tobytes()), reduced(cv2.imencode(".png", b)[1].tobytes()))


def within(d: dict) -> bool:
    return d["mean"] <= MAX_MEAN_DIFFERENCE and d["changed"] <= MAX_CHANGED_SHARE and d["height_change"] <= 0.02


def test_anti_aliasing_noise_passes():
    a = page_image()
    noisy = np.clip(a.astype(np.int16) + np.random.default_rng(0).integers(-6, 7, a.shape), 0, 255).astype(np.uint8)
    assert within(compared(a, noisy))
    assert within(compared(a, cv2.GaussianBlur(a, (3, 3), 0.6)))


def test_text_running_into_a_heading_fails():
    a = page_image()
    moved = a.copy()
    moved[40:340] = a[60:360]  # the lines move up 20 px, under the heading
    d = compared(a, moved)
    assert not within(d) and d["changed"] > MAX_CHANGED_SHARE
    assert CHANGED_LEVEL < 255
