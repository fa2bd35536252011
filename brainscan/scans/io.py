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
from io import BytesIO

import cv2
import numpy as np
from PIL import Image, ImageOps

from brainscan.errors import ScanError
from brainscan.scans.pixels import MAX_FILE_BYTES, MAX_PIXELS, MAX_SIDE, MIN_SIDE, luma

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


# Formats we let Pillow open. Excludes e.g. EPS (runs Ghostscript) and exotic
# plugins; anything else is reported as "not an image we can read".
IMAGE_FORMATS: tuple[str, ...] = (
    "PNG", "JPEG", "JPEG2000", "BMP", "DIB", "TIFF", "WEBP", "GIF", "PPM", "TGA", "SGI", "PCX", "QOI", "AVIF",
)
_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


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


def _check_size(label: str, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ScanError(
            f"{label} is {width}x{height} pixels, more than the {MAX_PIXELS:,} pixels we accept."
        )
    if min(width, height) < MIN_SIDE:
        raise ScanError(f"{label} is {width}x{height} pixels; the minimum is {MIN_SIDE} pixels per side.")


def _bomb_error(label: str, exc: Exception) -> ScanError:
    # Pillow refuses very large headers inside Image.open, before we see the size;
    # its message carries the pixel count.
    match = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" ({int(match.group(1)):,} pixels)" if match else ""
    return ScanError(f"{label} is too large to open safely{size}; the limit is {MAX_PIXELS:,} pixels.")


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
    notes: list[str] = []
    try:
        img = Image.open(BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise _bomb_error(label, exc) from exc
    except Exception as exc:  # noqa: BLE001 - anything Pillow cannot identify
        raise ScanError(f"{label} is not an image or DICOM file we can read.") from exc
    with img:
        _check_size(label, *img.size)  # header size, before any decoding
        n_frames = max(int(getattr(img, "n_frames", 1) or 1), 1)
        index = 0 if frame is None else int(frame)
        if not 0 <= index < n_frames:
            raise ScanError(
                f"Frame {index} does not exist; {label} has {n_frames} frame(s), numbered 0 to {n_frames - 1}."
            )
        try:
            if index:
                img.seek(index)
                _check_size(label, *img.size)
            img.load()
        except ScanError:
            raise
        except Image.DecompressionBombError as exc:
            raise _bomb_error(label, exc) from exc
        except Exception as exc:  # noqa: BLE001 - truncated / corrupt data (OSError, SyntaxError, ...)
            raise ScanError(f"{label} looks truncated or damaged and could not be decoded.") from exc
        fmt, mode = img.format, img.mode
        try:
            orientation = int(img.getexif().get(0x0112, 1) or 1)
            if orientation != 1:
                img = ImageOps.exif_transpose(img)
                notes.append("Rotated/flipped according to the photo's EXIF orientation.")
        except Exception:  # noqa: BLE001 - unreadable EXIF: keep pixels as stored
            notes.append("The EXIF orientation could not be read; the image is shown as stored.")
        try:
            pixels = _image_to_float(img, notes)
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
    """Read a file from disk and :func:`load_scan` it."""
    label = os.path.basename(os.fspath(path)) or "The file"
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise ScanError(f"{label} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; it was not opened.")
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ScanError(f"{label} was not found.") from None
    except IsADirectoryError:
        raise ScanError(f"{label} is a folder, not a file.") from None
    except PermissionError:
        raise ScanError(f"{label} could not be opened (permission denied).") from None
    except OSError:
        raise ScanError(f"{label} could not be read.") from None
    return load_scan(data, os.path.basename(os.fspath(path)), frame)
