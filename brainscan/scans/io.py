"""Load an uploaded scan (DICOM or ordinary image) into display-ready pixels.

Everything happens in memory; nothing is written to disk. Never imports
TensorFlow. DICOM support (pydicom) is imported only when a DICOM arrives.

Pixel conventions of :class:`Scan.pixels`: float32, H x W, [0, 1].
* 8-bit images: value / 255; colour -> luminance (ITU-R 601: .299 R + .587 G + .114 B);
  transparency is composited on black.
* 16-bit / 32-bit / float images (e.g. PNG "I;16"): linear min-max stretch of
  the actual values to [0, 1] (there is no standard display window), with a note.
* DICOM: see :mod:`brainscan.scans.dicom` (modality LUT, VOI LUT / window or a
  0.5-99.5 percentile stretch, MONOCHROME1 inverted).
* Images larger than MAX_SIDE on a side are downscaled with cv2.INTER_AREA.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from brainscan.errors import ScanError
from brainscan.scans import reader
from brainscan.scans.pixels import MAX_FILE_BYTES, MAX_PIXELS, MAX_SIDE, MIN_SIDE, luma
from brainscan.scans.reader import IMAGE_FORMATS  # noqa: F401 - re-exported

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "Scan",
    "ScanError",
    "is_dicom",
    "load_scan",
    "load_scan_path",
    "to_uint8",
]

_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                   7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}  # as ImageOps.exif_transpose


@dataclass(frozen=True, eq=False)
class Scan:
    pixels: np.ndarray = field(repr=False)  # float32, H x W, [0, 1], display-ready
    name: str
    kind: str  # "dicom" or "image"
    frame: int
    n_frames: int
    metadata: dict[str, object]
    notes: tuple[str, ...]


def _label(name: str) -> str:
    return _basename(name) or "This file"


def _basename(name: str) -> str:
    # Upload names may come from Windows; strip both kinds of directory part.
    return re.split(r"[\\/]", name)[-1] if name else ""


def is_dicom(data: bytes) -> bool:
    """True if ``data`` is DICOM by content ("DICM" at 128 or a plausible preamble-less dataset)."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return True
    if len(data) < 8 or data[:2] not in (b"\x02\x00", b"\x08\x00", b"\x00\x08"):
        return False  # cheap reject without importing pydicom
    from brainscan.scans.dicom import looks_like_dicom

    return looks_like_dicom(data)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 (rounded; NaN -> 0; out-of-range values clipped)."""
    arr = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)




COLOUR_NOTE_THRESHOLD = 0.08  # mean channel spread (0..1); grayscale saved as RGB JPEG stays below 0.02


def colourfulness(rgb: np.ndarray) -> float:
    """Mean spread between the largest and smallest channel per pixel, 0 (gray) to 1."""
    small = rgb[:: max(1, rgb.shape[0] // 256), :: max(1, rgb.shape[1] // 256), :3].astype(np.int16)
    return float((small.max(axis=2) - small.min(axis=2)).mean() / 255.0)


def _image_to_float(img: Image.Image, notes: list[str]) -> np.ndarray:
    mode = img.mode
    if mode in _HIGH_DEPTH_MODES:
        arr = np.asarray(img).astype(np.float64)
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(arr.min()), float(arr.max())
        if hi <= lo:
            return np.zeros(arr.shape, dtype=np.float32)
        notes.append(f"High bit-depth image ({mode}): stretched its value range {lo:g}-{hi:g} to 0-1.")
        return ((arr - lo) / (hi - lo)).astype(np.float32)
    if mode in ("L", "1"):
        return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255.0)
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        notes.append("Transparent areas were composited on black.")
        gray = luma(rgba, 255.0) * (rgba[..., 3].astype(np.float32) / np.float32(255.0))
    else:
        rgb = np.asarray(img.convert("RGB"))
        gray = luma(rgb, 255.0)
        if colourfulness(rgb) > COLOUR_NOTE_THRESHOLD:
            notes.append("This image is in colour, but MRI scans are grayscale: it may not be an MRI.")
    if mode not in ("LA", "La"):
        notes.append(f"Converted {'palette' if mode in ('P', 'PA') else mode} colour to grayscale.")
    return gray


# (pixels, n_frames, frame index, metadata, notes), as returned by brainscan.scans.dicom.read_dicom too
Decoded = tuple[np.ndarray, int, int, dict[str, object], list[str]]


def _load_image(data: bytes, label: str, frame: int | None) -> Decoded:
    """Decode through brainscan.scans.reader: header checked first, decode inside the shared budget, and shrunk to
    MAX_SIDE by Pillow before any float copy (so the float steps below see at most MAX_SIDE x MAX_SIDE)."""
    notes: list[str] = []
    img = reader.open_image(data, label, MIN_SIDE)  # header size, before any decoding
    with img:
        n_frames = max(int(getattr(img, "n_frames", 1) or 1), 1)
        index = 0 if frame is None else int(frame)
        if not 0 <= index < n_frames:
            raise ScanError(
                f"Frame {index} does not exist; {label} has {n_frames} frame(s), numbered 0 to {n_frames - 1}."
            )
        fmt, mode = img.format, img.mode
        small, (width, height) = reader.decode_image(img, label, index, MAX_SIDE, MIN_SIDE)
        if small.size != (width, height):
            notes.append(f"Image was {width}x{height}; downscaled to fit {MAX_SIDE} pixels "
                         f"({small.size[0]}x{small.size[1]}).")
        try:
            orientation = int(img.getexif().get(0x0112, 1) or 1)
            if orientation in _EXIF_TRANSPOSE:
                small = small.transpose(_EXIF_TRANSPOSE[orientation])
                notes.append("Rotated/flipped according to the photo's EXIF orientation.")
        except Exception:  # noqa: BLE001 - unreadable EXIF: keep pixels as stored
            notes.append("The EXIF orientation could not be read; the image is shown as stored.")
        try:
            with reader.BUDGET.reserve(small.size[0] * small.size[1] * 20, label):  # float copies below
                pixels = _image_to_float(small, notes)
        except ScanError:
            raise
        except (ValueError, OSError) as exc:  # e.g. a mode Pillow cannot convert to RGB
            raise ScanError(f"{label} uses a colour format ({mode}) we cannot convert.") from exc
    if n_frames > 1:
        notes.append(f"Showing frame {index} of {n_frames} (numbered from 0).")
    height, width = pixels.shape
    meta: dict[str, object] = {"format": fmt, "mode": mode, "width": width, "height": height}
    return pixels, n_frames, index, meta, notes


def _downscale(pixels: np.ndarray, notes: list[str]) -> np.ndarray:
    height, width = pixels.shape
    if max(height, width) <= MAX_SIDE:
        return pixels
    scale = MAX_SIDE / max(height, width)
    new_w, new_h = max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))
    notes.append(f"Image was {width}x{height}; downscaled to fit {MAX_SIDE} pixels ({new_w}x{new_h}).")
    return cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_AREA)


def load_scan(data: bytes, name: str = "", frame: int | None = None) -> Scan:
    """Decode ``data`` (DICOM or image, recognised by content) into a :class:`Scan`.

    ``frame`` picks a frame of a multi-frame file (default: the middle one for
    DICOM, the first for images). Raises :class:`ScanError` for unusable input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("load_scan expects the file's bytes")
    data = bytes(data)
    label = _label(name)
    if not data:
        raise ScanError("The file is empty.")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, (int, np.integer))):
        raise ScanError("The frame number must be a whole number.")
    if is_dicom(data):
        from brainscan.scans.dicom import read_dicom

        kind = "dicom"
        pixels, n_frames, index, meta, notes = read_dicom(data, frame)
    else:
        kind = "image"
        pixels, n_frames, index, meta, notes = _load_image(data, label, frame)
    pixels = _downscale(np.asarray(pixels, dtype=np.float32), notes)
    pixels = np.ascontiguousarray(np.clip(np.nan_to_num(pixels, nan=0.0), 0.0, 1.0), dtype=np.float32)
    if float(pixels.max()) - float(pixels.min()) < 1e-6:
        notes.append("The image has a single uniform value (no contrast).")
    return Scan(
        pixels=pixels,
        name=_basename(name),
        kind=kind,
        frame=index,
        n_frames=n_frames,
        metadata=meta,
        notes=tuple(notes),
    )


def load_scan_path(path: str | os.PathLike[str], frame: int | None = None) -> Scan:
    """Read a regular file of at most MAX_FILE_BYTES (never a pipe or device; brainscan.scans.reader) and load it."""
    return load_scan(reader.read_file(path, MAX_FILE_BYTES), os.path.basename(os.fspath(path)), frame)
