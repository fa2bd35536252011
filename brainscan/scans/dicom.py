"""DICOM decoding for :func:`brainscan.scans.io.load_scan`.

Privacy: only the elements in :data:`SAFE_TAGS` (plus the pixel-module elements
needed to decode) are ever read, and what is copied out holds no free text: codes
from DICOM's defined-term lists, numbers, and sentences of our own. pydicom converts
elements lazily, so never iterating the dataset means patient values are never even
decoded, validated, logged or warned about. Error messages are our own sentences;
pydicom's text is never passed through (``raise ... from None``).

Memory: every parse goes through :func:`brainscan.scans.dicom_budget.parse_dataset`, which never
lets pydicom inflate a deflated data set itself and checks every declared size against the shared
decode budget before anything is decoded (see that module).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array
from pydicom.uid import UID

from brainscan.errors import ScanError
from brainscan.scans import reader
from brainscan.scans.dicom_budget import (
    DAMAGED,
    MAX_TOTAL_PIXELS,
    Geometry,
    check_codestream,
    check_frames,
    dicom_size,
    get_element,
    memory_needed,
    open_source,
    parse_dataset,
    syntax_of,
    to_int,
    ts_name,
)
from brainscan.scans.pixels import MAX_PIXELS, MIN_SIDE, luma

__all__ = ["MAX_TOTAL_PIXELS", "SAFE_TAGS", "Frames", "SliceHeader", "dicom_size", "looks_like_dicom", "read_dicom",
           "read_frames", "slice_header"]

log = logging.getLogger(__name__)

# metadata key -> DICOM keyword. Nothing outside this list is copied out, and nothing typed by an operator:
# no LO/SH/ST/LT/UT/PN values (series or study description, protocol, institution, names). Coded strings
# (CS) only where the value is one of DICOM's defined terms (see _CODES); the rest are numbers, a transfer
# syntax name from pydicom's dictionary, or a plane derived from the orientation vectors.
SAFE_TAGS: dict[str, str] = {
    "modality": "Modality",
    "body_part": "BodyPartExamined",
    "orientation": "ImageOrientationPatient",
    "pixel_spacing": "PixelSpacing",
    "slice_thickness": "SliceThickness",
    "rows": "Rows",
    "columns": "Columns",
    "frames": "NumberOfFrames",
    "photometric_interpretation": "PhotometricInterpretation",
    "transfer_syntax": "TransferSyntaxUID",
    "bits_stored": "BitsStored",
}

# Defined terms (DICOM PS3.3 C.7.3.1.1.1 Modality, PS3.16 Annex L body parts, PS3.3 C.7.6.3.1.2
# photometric interpretation). A value outside its list is dropped: a code string is short, but an operator
# can still type a name or a number into one.
_CODES: dict[str, frozenset[str]] = {
    "modality": frozenset(
        "AR ASMT AU BDUS BI BMD CR CT CTPROTOCOL DG DOC DX ECG EEG EMG EOG EPS ES FID GM HC HD IO IOL IVOCT IVUS "
        "KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA PLAN POS PR PT PX REG RESP RF "
        "RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN "
        "TEXTUREMAP TG US VA XA XAPROTOCOL XC".split()),
    "body_part": frozenset(
        "BRAIN HEAD HEADNECK SKULL NECK CSPINE TSPINE LSPINE SSPINE SPINE WHOLESPINE EAR EYE ORBIT FACE JAW "
        "MOUTH NOSE SINUS IAC SELLA TEMPBONE CAROTID CIRCLEOFWILLIS WHOLEBODY CHEST ABDOMEN PELVIS".split()),
    "photometric_interpretation": frozenset(
        ["MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_422",
         "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "HSV", "ARGB", "CMYK", "XYB"]),
}


def looks_like_dicom(data: bytes) -> bool:
    """True for Part-10 files ("DICM" at 128) and plausible preamble-less datasets."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return True
    # Preamble-less: must start with a group 0002 (meta) or 0008 element tag
    # (little endian, or 0008 big endian), and then parse into known tags.
    if len(data) < 8 or data[:2] not in (b"\x02\x00", b"\x08\x00", b"\x00\x08"):
        return False
    try:
        src = open_source(data, count=False)
        # A deflated data set is not inflated to decide this: its file meta alone has to look right.
        ds = parse_dataset(src, header=True, peek=0 if src.deflated else None)
        tags = list(ds.file_meta.keys()) + list(ds.keys())
    except Exception:  # noqa: BLE001 - any parse failure just means "not DICOM"
        return False
    known = sum(1 for tag in tags[:16] if int(tag) in DicomDictionary)
    return known >= 2


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


def plane(orientation: Any) -> str | None:
    """The slice plane ImageOrientationPatient describes: "axial", "coronal" or "sagittal" where the slice's
    normal lies within about 37 degrees of an axis, else "oblique"; None without a usable tag."""
    try:
        values = [float(v) for v in orientation]
    except (TypeError, ValueError):
        return None
    if len(values) != 6 or not all(np.isfinite(values)):
        return None
    normal = np.cross(np.array(values[:3]), np.array(values[3:]))
    size = float(np.linalg.norm(normal))
    if size < 1e-6:
        return None
    normal = np.abs(normal) / size
    axis = int(np.argmax(normal))
    return ("sagittal", "coronal", "axial")[axis] if normal[axis] >= 0.8 else "oblique"


def _metadata(ds: Dataset, tsyntax: str, n_frames: int) -> dict[str, object]:
    """The allow-listed metadata: codes from a defined-term list, numbers, names of our own; never free text."""
    meta: dict[str, object] = {}
    for key, keyword in SAFE_TAGS.items():
        if key == "transfer_syntax":
            meta[key] = ts_name(tsyntax) if tsyntax else None
            continue
        if key == "frames":
            meta[key] = n_frames
            continue
        value = get_element(ds, keyword)
        if value is None or value == "":
            meta[key] = None
        elif key == "orientation":
            meta[key] = plane(value)
        elif key == "pixel_spacing":
            spacing = [_float_or_none(v) for v in value] if _count(value) > 1 else []
            meta[key] = spacing if spacing and None not in spacing else None
        elif key == "slice_thickness":
            thickness = _float_or_none(_first(value))
            meta[key] = thickness if thickness is not None and thickness > 0 else None
        elif key in ("rows", "columns", "bits_stored"):
            meta[key] = to_int(value, 0) or None
        elif key in _CODES:
            code = str(_first(value)).strip().upper()
            meta[key] = code if code in _CODES[key] else None
        else:  # a new key must say how its value is made safe
            raise AssertionError(f"no rule for metadata key {key}")
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
    entries, first, bits = (to_int(v, 0) for v in item.LUTDescriptor[:3])
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
    if get_element(ds, "VOILUTSequence"):
        y = _apply_voi_lut(x, ds)
        return y, "VOI LUT from the file"
    centers, widths = get_element(ds, "WindowCenter"), get_element(ds, "WindowWidth")
    center, width = _float_or_none(_first(centers)), _float_or_none(_first(widths))
    function = str(get_element(ds, "VOILUTFunction") or "LINEAR").strip().upper()
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
        scale = float(2 ** to_int(get_element(ds, "BitsStored"), 16) - 1)
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

    In order: a deflated data set is measured while it inflates (refused past the decode budget); the header
    is read and the declared size checked (pixels, frames, bytes); the memory the rest needs is reserved in
    the shared budget; only then is the whole file parsed, a compressed frame's own size checked, and decoded.
    """
    notes: list[str] = []
    src = open_source(data)
    head = parse_dataset(src, header=True)
    geom, tsyntax = Geometry.of(head), syntax_of(src, head)
    del head
    if geom.known and tsyntax:
        check_frames(geom, tsyntax, frame, max_pixels, min_side)
    with reader.BUDGET.reserve(memory_needed(src, geom), "This DICOM image"):
        ds = parse_dataset(src, header=False)
        if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            raise ScanError("This DICOM file has no image (no pixel data).")
        if Geometry.of(ds) != geom:  # only a deflated header longer than _HEADER_PEEK gets here
            raise ScanError(DAMAGED)
        index = check_frames(geom, tsyntax, frame, max_pixels, min_side)
        if not src.tsyntax:  # no file meta (preamble-less or old ACR-NEMA style): say how it parsed
            ds.file_meta.TransferSyntaxUID = UID(tsyntax)
        check_codestream(ds, tsyntax, geom, index)
        return _decode(ds, tsyntax, index, geom.frames, notes)


def _decode(ds: Dataset, tsyntax: str, index: int, n_frames: int, notes: list[str]
            ) -> tuple[np.ndarray, int, int, dict[str, object], list[str]]:
    try:
        arr = pixel_array(ds, index=index)
    except Exception as exc:  # noqa: BLE001 - only the type is logged (privacy)
        log.debug("DICOM pixel decode failed: %s", type(exc).__name__)
        raise ScanError(
            f"Could not decode the image in this DICOM file; the data may be damaged ({ts_name(tsyntax)}, {tsyntax})."
        ) from None

    photometric = str(get_element(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    try:
        if arr.ndim == 3 or photometric == "PALETTE COLOR":
            pixels, window = _to_gray(arr, ds, photometric), "none (colour image)"
            named = photometric if photometric in _CODES["photometric_interpretation"] else "unknown colour model"
            notes.append(f"Colour DICOM ({named}) converted to grayscale.")
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
    flip_up_down, flip_left_right = axial_display_flips(get_element(ds, "ImageOrientationPatient"))
    if flip_up_down or flip_left_right:
        pixels = np.asarray(pixels)[::-1 if flip_up_down else 1, ::-1 if flip_left_right else 1]
        notes.append("Turned to the usual axial view (front of the head at the top, the patient's right on the "
                     "image's left), as the file's orientation tag says.")

    meta = _metadata(ds, tsyntax, n_frames)
    meta["window"] = window
    pixels = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0)), n_frames, index, meta, notes


# --- series and multi-frame volumes (brainscan.scans.series) ----------------------------------------------------
# Geometry only: positions, orientation, spacing, instance number, and the series UID to group files by (a UID is
# never shown, logged or written). Parsed through parse_dataset like everything else, so the same limits apply.

@dataclass(frozen=True)
class SliceHeader:
    """Where a DICOM file's frames lie: what brainscan.scans.series sorts and checks a series with."""

    series: str  # SeriesInstanceUID ("" when absent): grouping only
    rows: int
    cols: int
    frames: int
    orientation: tuple[float, ...] | None  # ImageOrientationPatient (row then column direction, LPS)
    positions: tuple[tuple[float, float, float], ...]  # ImagePositionPatient of each frame (LPS mm); () if absent
    spacing: tuple[float, float] | None  # PixelSpacing (between rows, between columns) in mm
    instance: int | None  # InstanceNumber
    thickness: float | None
    colour: bool
    bytes_per_pixel: int = 2
    orientations_differ: bool = False  # an enhanced file whose frames lie in different planes


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def _item(ds: Any, sequence: str) -> Any:
    seq = get_element(ds, sequence)
    try:
        return seq[0] if seq else None
    except Exception:  # noqa: BLE001 - a malformed sequence is "absent"
        return None


def _functional(shared: Any, frame: Any, sequence: str, keyword: str) -> Any:
    """keyword from a per-frame functional group, else from the shared one (enhanced multi-frame)."""
    for group in (frame, shared):
        item = _item(group, sequence) if group is not None else None
        value = get_element(item, keyword) if item is not None else None
        if value is not None:
            return value
    return None


def slice_header(data: bytes) -> SliceHeader:
    """The geometry of a DICOM file from its header alone (no pixel data decoded); ScanError if unreadable."""
    ds = parse_dataset(open_source(data), header=True)
    geom = Geometry.of(ds)
    photometric = str(get_element(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = get_element(ds, "PerFrameFunctionalGroupsSequence")
    orientation = _floats(get_element(ds, "ImageOrientationPatient"), 6)
    spacing = _floats(get_element(ds, "PixelSpacing"), 2)
    positions: list[tuple[float, float, float]] = []
    differ = False
    if per_frame:
        try:
            groups = list(per_frame)[: geom.frames]
        except Exception:  # noqa: BLE001
            groups = []
        seen = set()
        for group in groups:
            pos = _floats(_functional(shared, group, "PlanePositionSequence", "ImagePositionPatient"), 3)
            ori = _floats(_functional(shared, group, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
            if pos is None:
                positions = []
                break
            positions.append(pos)  # type: ignore[arg-type]
            if ori is not None:
                seen.add(tuple(round(v, 3) for v in ori))
                orientation = orientation or ori
        differ = len(seen) > 1
        spacing = spacing or _floats(_functional(shared, groups[0] if groups else None, "PixelMeasuresSequence",
                                                 "PixelSpacing"), 2)
    if not positions:
        pos = _floats(get_element(ds, "ImagePositionPatient"), 3)
        positions = [pos] if pos is not None and geom.frames == 1 else []  # type: ignore[list-item]
    series = get_element(ds, "SeriesInstanceUID")
    instance = get_element(ds, "InstanceNumber")
    thickness = _float_or_none(_first(get_element(ds, "SliceThickness")))
    return SliceHeader(str(series or "").strip(), geom.rows, geom.cols, geom.frames, orientation, tuple(positions),
                       spacing, None if instance in (None, "") else to_int(instance, 0), thickness,
                       geom.samples > 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"), (geom.bits + 7) // 8,
                       differ)


@dataclass(frozen=True)
class Frames:
    """A DICOM file's frames as stored values, with what turns them into modality values."""

    pixels: np.ndarray  # (frames, rows, cols), the stored integer (or float) type
    slope: np.ndarray  # per frame: modality value = stored * slope + intercept
    intercept: np.ndarray
    monochrome1: bool
    metadata: dict[str, object]


def read_frames(data: bytes) -> Frames:
    """Every frame of a (monochrome) DICOM file as stored values, within the same header checks and decode budget
    as read_dicom: no window, no flip, no float copy (the series is windowed once, as a whole)."""
    src = open_source(data)
    head = parse_dataset(src, header=True)
    geom, tsyntax = Geometry.of(head), syntax_of(src, head)
    del head
    check_frames(geom, tsyntax, 0, MAX_PIXELS, MIN_SIDE)
    with reader.BUDGET.reserve(memory_needed(src, geom) + geom.declared_bytes, "This DICOM series"):
        ds = parse_dataset(src, header=False)
        if "PixelData" not in ds:
            raise ScanError("This DICOM file has no image (no pixel data).")
        if Geometry.of(ds) != geom:
            raise ScanError(DAMAGED)
        if not src.tsyntax:
            ds.file_meta.TransferSyntaxUID = UID(tsyntax)
        photometric = str(get_element(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
        if geom.samples > 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise ScanError("This DICOM series is in colour; only grayscale series can be checked as a volume.")
        for index in range(geom.frames):
            check_codestream(ds, tsyntax, geom, index)
        try:
            arr = pixel_array(ds) if geom.frames > 1 else pixel_array(ds, index=0)
        except Exception as exc:  # noqa: BLE001 - only the type is logged (privacy)
            log.debug("DICOM pixel decode failed: %s", type(exc).__name__)
            raise ScanError(f"Could not decode the images in this DICOM file; the data may be damaged "
                            f"({ts_name(tsyntax)}, {tsyntax}).") from None
        arr = np.asarray(arr).reshape(geom.frames, geom.rows, geom.cols)
        slope = np.ones(geom.frames)
        intercept = np.zeros(geom.frames)
        shared = _item(ds, "SharedFunctionalGroupsSequence")
        per_frame = get_element(ds, "PerFrameFunctionalGroupsSequence")
        groups = list(per_frame)[: geom.frames] if per_frame else [None] * geom.frames
        for i, group in enumerate(groups):
            s = _float_or_none(_functional(shared, group, "PixelValueTransformationSequence", "RescaleSlope"))
            b = _float_or_none(_functional(shared, group, "PixelValueTransformationSequence", "RescaleIntercept"))
            s = s if s is not None else _float_or_none(get_element(ds, "RescaleSlope"))
            b = b if b is not None else _float_or_none(get_element(ds, "RescaleIntercept"))
            slope[i] = s if s not in (None, 0.0) else 1.0
            intercept[i] = b or 0.0
        meta = _metadata(ds, tsyntax, geom.frames)
    return Frames(arr, slope, intercept, photometric == "MONOCHROME1", meta)
