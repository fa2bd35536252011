"""Snapshot comparison in the style of Streamlit's own e2e suite (``assert_snapshot``): a rendered image is
compared with a stored one under tests/snapshots/ within a tolerance, so that layout breakage (text running
into a heading, a missing panel, a wrapped table) fails while anti-aliasing and a new Chromium's font hinting
do not.

Update the stored images after an intended change, then look at them before committing:

    BRAINSCAN_UPDATE_SNAPSHOTS=1 python -m pytest tests/e2e/test_page_snapshots.py tests/test_report_snapshots.py

A failing comparison writes the new image and a difference image to artifacts/snapshots/.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STORED = ROOT / "tests" / "snapshots"
ARTIFACTS = ROOT / "artifacts" / "snapshots"
UPDATE = os.environ.get("BRAINSCAN_UPDATE_SNAPSHOTS") == "1"

# Stored and compared as gray images at half resolution (small files; a layout change moves whole blocks of
# text and images, far more than font hinting or anti-aliasing of another Chromium build does).
MAX_MEAN_DIFFERENCE = 3.0  # gray levels (0-255)
MAX_CHANGED_SHARE = 0.01  # of pixels differing by more than CHANGED_LEVEL
CHANGED_LEVEL = 64
MAX_HEIGHT_CHANGE = 0.02  # a page that grew or shrank by more than this share is a layout change


def reduced(png: bytes, half: bool = True) -> np.ndarray:
    """A PNG as the gray image that is stored and compared (half size unless half is False)."""
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    if not half:
        return img
    return cv2.resize(img, (max(1, img.shape[1] // 2), max(1, img.shape[0] // 2)), interpolation=cv2.INTER_AREA)


def difference(stored: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Mean absolute difference and share of strongly changed pixels of two gray images (actual is resized to
    stored's size; the change in height is reported on its own)."""
    height_change = abs(actual.shape[0] - stored.shape[0]) / stored.shape[0]
    if actual.shape != stored.shape:
        actual = cv2.resize(actual, (stored.shape[1], stored.shape[0]), interpolation=cv2.INTER_AREA)
    d = np.abs(stored.astype(np.int16) - actual.astype(np.int16))
    return {"mean": float(d.mean()), "changed": float((d > CHANGED_LEVEL).mean()), "height_change": height_change}


def assert_snapshot(png: bytes, name: str, max_mean: float = MAX_MEAN_DIFFERENCE,
                    max_changed: float = MAX_CHANGED_SHARE, half: bool = True) -> None:
    """Compare a PNG (a screenshot, a rendered report page) with tests/snapshots/<name>; with
    BRAINSCAN_UPDATE_SNAPSHOTS=1 store it instead. A caller with its own measured tolerance passes it."""
    stored_path = STORED / name
    actual = reduced(png, half)
    if UPDATE:
        stored_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(stored_path), actual, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        return
    assert stored_path.is_file(), (f"No stored snapshot {stored_path.relative_to(ROOT)}; make it with "
                                   "BRAINSCAN_UPDATE_SNAPSHOTS=1 and look at it before committing.")
    stored = cv2.imread(str(stored_path), cv2.IMREAD_GRAYSCALE)
    diff = difference(stored, actual)
    ok = diff["mean"] <= max_mean and diff["changed"] <= max_changed and diff["height_change"] <= MAX_HEIGHT_CHANGE
    if not ok:
        out = ARTIFACTS / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png)
        resized = cv2.resize(actual, (stored.shape[1], stored.shape[0]), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out.with_name(out.stem + "-diff.png")), cv2.absdiff(stored, resized))
    assert ok, (f"{name} differs from its snapshot: {diff} (limits: mean {max_mean}, changed share {max_changed}, "
                f"height {MAX_HEIGHT_CHANGE}); see {ARTIFACTS.relative_to(ROOT)}/{name}")
