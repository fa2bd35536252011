"""DICOM decoding for :func:`brainscan.scans.io.load_scan`.

Privacy: only the elements in :data:`SAFE_TAGS` (plus the pixel-module elements
needed to decode) are ever read. pydicom converts elements lazily, so never
iterating the dataset means patient values are never even decoded, validated,
logged or warned about. Error messages are our own sentences; pydicom's text is
never passed through (``raise ... from None``).
"""

from __future__ import annotations

import logging
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from brainscan.errors import ScanError
from brainscan.scans import reader
from brainscan.scans.pixels import MAX_PIXELS, MIN_SIDE, luma

__all__ = ["MAX_TOTAL_PIXELS", "SAFE_TAGS", "looks_like_dicom", "read_dicom"]

log = logging.getLogger(__name__)

# metadata key -> DICOM keyword. Nothing outside this list is copied out.
SAFE_TAGS: dict[str, str] = {
    "modality": "Modality",
    "series_description": "SeriesDescription",
    "body_part": "BodyPartExamined",
    "pixel_spacing": "PixelSpacing",
    "rows": "Rows",
    "columns": "Columns",
    "frames": "NumberOfFrames",
    "photometric_interpretation": "PhotometricInterpretation",
    "transfer_syntax": "TransferSyntaxUID",
    "bits_stored": "BitsStored",
}

# Rows * Columns * frames limit for the whole file (we decode one frame, but a
# header declaring an absurd total is refused anyway).
MAX_TOTAL_PIXELS: int = 10 * MAX_PIXELS

# Transfer syntaxes newer than pydicom 3.0's UID dictionary.
_EXTRA_TS_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression",
}

_DAMAGED = "This DICOM file is damaged or incomplete and could not be read."


def ts_name(uid: str) -> str:
    """Human name of a transfer syntax UID ("unknown transfer syntax" if unknown)."""
    uid = str(uid)
    if uid in _EXTRA_TS_NAMES:
        return _EXTRA_TS_NAMES[uid]
    name = UID(uid).name
    return name if name and name != uid else "unknown transfer syntax"


def looks_like_dicom(data: bytes) -> bool:
    """True for Part-10 files ("DICM" at 128) and plausible preamble-less datasets."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return True
    # Preamble-less: must start with a group 0002 (meta) or 0008 element tag
    # (little endian, or 0008 big endian), and then parse into known tags.
    if len(data) < 8 or data[:2] not in (b"\x02\x00", b"\x08\x00", b"\x00\x08"):
        return False
    try:
        ds = pydicom.dcmread(BytesIO(data), force=True, stop_before_pixels=True, defer_size=1024)
        tags = list(ds.file_meta.keys()) + list(ds.keys())
    except Exception:  # noqa: BLE001 - any parse failure just means "not DICOM"
        return False
    known = sum(1 for tag in tags[:16] if int(tag) in DicomDictionary)
    return known >= 2


def _get(ds: Dataset, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed safe element is just "absent"
        return None


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float_or_none(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _first(value: Any) -> Any:
    """First value of a possibly multi-valued element."""
    if isinstance(value, (list, tuple, MultiValue)):
        return value[0] if len(value) else None
    return value


def _count(value: Any) -> int:
    if isinstance(value, (list, tuple, MultiValue)):
        return len(value)
    return 0 if value is None else 1


def _metadata(ds: Dataset, tsyntax: str, n_frames: int) -> dict[str, object]:
    meta: dict[str, object] = {}
    for key, keyword in SAFE_TAGS.items():
        if key == "transfer_syntax":
            meta[key] = ts_name(tsyntax) if tsyntax else None
            continue
        if key == "frames":
            meta[key] = n_frames
            continue
        value = _get(ds, keyword)
        if value is None or value == "":
            meta[key] = None
        elif key == "pixel_spacing":
            spacing = [_float_or_none(v) for v in value] if _count(value) > 1 else []
            meta[key] = spacing if spacing and None not in spacing else None
        elif key in ("rows", "columns", "bits_stored"):
            meta[key] = _int(value, 0) or None
        else:
            meta[key] = str(value)[:64]
    return meta


def _window(x: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """VOI window per DICOM PS3.3 C.11.2.1.2, output in [0, 1]."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - center) / width, -500, 500)))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if width <= 1.0:  # LINEAR with width 1 is a threshold
        return (x > center - 0.5).astype(np.float32)
    return np.clip((x - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


def _stretch(x: np.ndarray, notes: list[str]) -> tuple[np.ndarray, str]:
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros_like(x), "none (no finite values)"
    lo, hi = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        notes.append("No window in the file and the image has a single value; shown as black.")
        return np.zeros_like(x), "none (constant image)"
    notes.append("No window in the file: used a 0.5-99.5 percentile stretch.")
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0), f"0.5-99.5 percentile stretch ({lo:g} to {hi:g})"


def _apply_voi_lut(x: np.ndarray, ds: Dataset) -> np.ndarray:
    """First VOI LUT of the file, output scaled to [0, 1] by its bit depth.

    Done here rather than with pydicom's apply_voi, which (3.0.2) builds its
    index array in the LUT's dtype, so indices past 255 of an 8-bit LUT wrap.
    """
    item = ds.VOILUTSequence[0]
    entries, first, bits = (_int(v, 0) for v in item.LUTDescriptor[:3])
    entries = entries or 65536
    elem = item["LUTData"]
    if isinstance(elem.value, bytes):  # OW: raw 16-bit words in the dataset's byte order
        little = ds.original_encoding[1] is not False
        lut = np.frombuffer(elem.value, dtype="<u2" if little else ">u2")[:entries]
    else:
        lut = np.atleast_1d(np.asarray(elem.value, dtype=np.float64))[:entries]
    if lut.size == 0 or not 8 <= bits <= 16:
        raise ValueError("bad VOI LUT")
    index = np.clip(np.rint(x) - first, 0, lut.size - 1).astype(np.int64)
    return np.clip(lut[index].astype(np.float32) / np.float32(2**bits - 1), 0.0, 1.0)


def _voi(arr: np.ndarray, ds: Dataset, notes: list[str]) -> tuple[np.ndarray, str]:
    """Modality LUT then VOI LUT / window / percentile stretch; returns [0, 1] values."""
    x = apply_modality_lut(arr, ds).astype(np.float32)  # float32 halves memory on big images
    if _get(ds, "VOILUTSequence"):
        y = _apply_voi_lut(x, ds)
        return y, "VOI LUT from the file"
    centers, widths = _get(ds, "WindowCenter"), _get(ds, "WindowWidth")
    center, width = _float_or_none(_first(centers)), _float_or_none(_first(widths))
    function = str(_get(ds, "VOILUTFunction") or "LINEAR").strip().upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    min_width = 1.0 if function == "LINEAR" else 0.0
    if center is not None and width is not None and width >= min_width and width > 0:
        desc = f"center {center:g}, width {width:g} from the file ({function})"
        if max(_count(centers), _count(widths)) > 1:
            desc += f"; first of {max(_count(centers), _count(widths))} windows in the file"
        return _window(x, center, width, function), desc
    if center is not None or width is not None:
        notes.append("The window in the file is invalid, so it was ignored.")
    return _stretch(x, notes)


def _to_gray(arr: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """Colour (RGB, YBR already converted by pydicom, or palette) -> luminance in [0, 1]."""
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    if arr.dtype == np.uint8:
        scale = 255.0
    elif photometric == "PALETTE COLOR":
        scale = 65535.0
    else:
        scale = float(2 ** _int(_get(ds, "BitsStored"), 16) - 1)
    return np.clip(luma(arr, scale), 0.0, 1.0)


def axial_display_flips(orientation: Any) -> tuple[bool, bool]:
    """(up-down, left-right) flips that show an axial slice as radiologists (and every training source) do:
    front of the head at the top, the patient's right on the image's left. ImageOrientationPatient holds the
    row and column directions in patient coordinates (x toward the patient's left, y toward the back), so
    the usual view has rows along +x and columns along +y. Anything else (no tag, a sagittal or coronal
    slice, a slice rotated by about 90 degrees) is left as stored: (False, False)."""
    try:
        values = [float(v) for v in orientation]
    except (TypeError, ValueError):
        return False, False
    if len(values) != 6 or not all(np.isfinite(values)):
        return False, False
    row, col = np.array(values[:3]), np.array(values[3:])
    if abs(row[0]) < 0.7 or abs(col[1]) < 0.7:  # not an axial slice in the usual frame, or turned sideways
        return False, False
    return bool(col[1] < 0), bool(row[0] < 0)


def read_dicom(
    data: bytes,
    frame: int | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
    min_side: int = MIN_SIDE,
) -> tuple[np.ndarray, int, int, dict[str, object], list[str]]:
    """Decode one frame of a DICOM file to display-ready float32 H x W in [0, 1].

    Returns ``(pixels, n_frames, frame_index, metadata, notes)``. The frame
    defaults to the middle one (``n_frames // 2``). Raises ScanError.
    """
    notes: list[str] = []
    try:
        ds = pydicom.dcmread(BytesIO(data), force=True)
    except Exception:  # noqa: BLE001 - pydicom's message is not shown (privacy)
        raise ScanError(_DAMAGED) from None
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ScanError("This DICOM file has no image (no pixel data).")

    tsyntax = str(_get(ds.file_meta, "TransferSyntaxUID") or "")
    if not tsyntax:
        # No file meta (preamble-less or old ACR-NEMA style): use how it parsed.
        implicit, little = ds.original_encoding
        if implicit is None or little is None:
            raise ScanError(_DAMAGED)
        tsyntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        ds.file_meta.TransferSyntaxUID = UID(tsyntax)
    cannot = f"Cannot decode this DICOM's compression ({ts_name(tsyntax)}, {tsyntax})."
    try:
        available = get_decoder(UID(tsyntax)).is_available
    except Exception:  # noqa: BLE001 - unknown or unsupported syntax
        available = False
    if not available:
        raise ScanError(cannot)

    rows, cols = _int(_get(ds, "Rows"), 0), _int(_get(ds, "Columns"), 0)
    n_frames = max(_int(_get(ds, "NumberOfFrames"), 1), 1)
    if rows <= 0 or cols <= 0:
        raise ScanError("This DICOM file does not say how large its image is.")
    if rows * cols > max_pixels:
        raise ScanError(f"This DICOM image is {cols}x{rows} pixels, more than the {max_pixels:,} pixels we accept.")
    if rows * cols * n_frames > MAX_TOTAL_PIXELS:
        raise ScanError(
            f"This DICOM file declares {n_frames} frames of {cols}x{rows} pixels, "
            f"more than the {MAX_TOTAL_PIXELS:,} pixels in total we accept."
        )
    if min(rows, cols) < min_side:
        raise ScanError(f"This DICOM image is {cols}x{rows} pixels; the minimum is {min_side} pixels per side.")
    index = n_frames // 2 if frame is None else int(frame)
    if not 0 <= index < n_frames:
        raise ScanError(
            f"Frame {index} does not exist; this file has {n_frames} frame(s), numbered 0 to {n_frames - 1}."
        )

    spp = max(_int(_get(ds, "SamplesPerPixel"), 1), 1)
    bits = max(_int(_get(ds, "BitsAllocated"), 16), 8)
    # The decoded frame plus the float32 copies the LUT / window steps make: reserved in the shared budget.
    with reader.BUDGET.reserve(rows * cols * spp * (bits // 8 + 8), "This DICOM image"):
        return _decode(ds, tsyntax, index, n_frames, notes)


def _decode(ds: Dataset, tsyntax: str, index: int, n_frames: int, notes: list[str]
            ) -> tuple[np.ndarray, int, int, dict[str, object], list[str]]:
    try:
        arr = pixel_array(ds, index=index)
    except Exception as exc:  # noqa: BLE001 - only the type is logged (privacy)
        log.debug("DICOM pixel decode failed: %s", type(exc).__name__)
        raise ScanError(
            f"Could not decode the image in this DICOM file; the data may be damaged ({ts_name(tsyntax)}, {tsyntax})."
        ) from None

    photometric = str(_get(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    try:
        if arr.ndim == 3 or photometric == "PALETTE COLOR":
            pixels, window = _to_gray(arr, ds, photometric), "none (colour image)"
            notes.append(f"Colour DICOM ({photometric}) converted to grayscale.")
        else:
            pixels, window = _voi(arr, ds, notes)
    except Exception as exc:  # noqa: BLE001 - malformed LUT / window elements
        log.debug("DICOM LUT/window failed: %s", type(exc).__name__)
        raise ScanError("This DICOM file's display settings (lookup tables) are damaged.") from None
    if photometric == "MONOCHROME1":
        pixels = 1.0 - pixels
        notes.append("MONOCHROME1 image: inverted so that higher values are brighter.")
    if n_frames > 1:
        notes.append(f"Showing frame {index} of {n_frames} (numbered from 0).")
    flip_up_down, flip_left_right = axial_display_flips(_get(ds, "ImageOrientationPatient"))
    if flip_up_down or flip_left_right:
        pixels = np.asarray(pixels)[::-1 if flip_up_down else 1, ::-1 if flip_left_right else 1]
        notes.append("Turned to the usual axial view (front of the head at the top, the patient's right on the "
                     "image's left), as the file's orientation tag says.")

    meta = _metadata(ds, tsyntax, n_frames)
    meta["window"] = window
    pixels = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0)), n_frames, index, meta, notes
