"""DICOM decoding for :func:`brainscan.scans.io.load_scan`.

Privacy: only the elements in :data:`SAFE_TAGS` (plus the pixel-module elements
needed to decode) are ever read, and what is copied out holds no free text: codes
from DICOM's defined-term lists, numbers, and sentences of our own. pydicom converts
elements lazily, so never iterating the dataset means patient values are never even
decoded, validated, logged or warned about. Error messages are our own sentences;
pydicom's text is never passed through (``raise ... from None``).

Memory: every parse goes through :func:`_parse`, which never lets pydicom inflate a
deflated data set itself (it would inflate all of it inside ``dcmread``): the stream is
inflated here in bounded steps and refused as soon as it passes the shared decode
budget, and only then handed to pydicom as explicit VR little endian. The header is read
first (``stop_before_pixels``), and the declared frames (native or compressed) and the
size the compressed codestream itself declares are checked against the budget before
anything is decoded.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.filereader import _read_file_meta_info, read_preamble  # group 0002 only: pydicom's own reading
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from brainscan.errors import ScanError
from brainscan.scans import reader
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
        src = _source(data, count=False)
        # A deflated data set is not inflated to decide this: its file meta alone has to look right.
        ds = _parse(src, header=True, peek=0 if src.deflated else None)
        tags = list(ds.file_meta.keys()) + list(ds.keys())
    except Exception:  # noqa: BLE001 - any parse failure just means "not DICOM"
        return False
    known = sum(1 for tag in tags[:16] if int(tag) in DicomDictionary)
    return known >= 2


# --- parsing within the decode budget -------------------------------------------------------------

DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian: the data set after the meta is deflated
_INFLATE_IN = 64 * 1024  # compressed bytes handed to zlib per call (its unconsumed tail is copied each time)
_INFLATE_OUT = 1024 * 1024  # inflated bytes per call while measuring (then dropped)
_HEADER_PEEK = 16 * 1024 * 1024  # inflated bytes parsed for a deflated file's header (stop_before_pixels)
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"))
# Syntaxes whose frames carry their own size: JPEG (baseline, extended, lossless), JPEG-LS; JPEG 2000, HTJ2K.
_JPEG_SYNTAXES = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81))
_J2K_SYNTAXES = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93, 201, 202, 203))
_JPEG_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7))
_MB = 1024 * 1024


def _budget() -> int:
    """The most bytes one decode may hold: the shared budget's single-decode limit."""
    return min(reader.BUDGET.total, reader.MAX_DECODED_BYTES)


@dataclass(frozen=True)
class _Source:
    """A file as handed to pydicom: its transfer syntax from the file meta ("" without one), where the data set
    starts, where the meta's transfer syntax value is, and (deflated and measured) how large it inflates."""

    data: bytes
    tsyntax: str
    dataset_at: int
    ts_value: tuple[int, int] | None
    inflated: int = 0

    @property
    def deflated(self) -> bool:
        return self.tsyntax == DEFLATED and self.ts_value is not None


def _scan_meta(data: bytes) -> tuple[str, int, tuple[int, int] | None]:
    """(transfer syntax, offset of the data set, span of the transfer syntax value in the file meta).

    The meta is read by pydicom's own reader, which reads group 0002 only and never inflates, so the syntax is
    the one dcmread would act on and the data set starts where dcmread would start it. The span of the value is
    then found by walking the same bytes (explicit VR; implicit as some old files write it)."""
    fp = BytesIO(data)
    try:
        read_preamble(fp, True)
        start = fp.tell()
        meta = _read_file_meta_info(fp)
        tsyntax = str(meta.get("TransferSyntaxUID") or "").strip("\x00 ")
    except Exception:  # noqa: BLE001 - dcmread will find it damaged too
        return "", 0, None
    dataset_at, pos, span = fp.tell(), start, None
    while pos + 8 <= dataset_at:
        element = struct.unpack_from("<H", data, pos + 2)[0]
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            length, value_at = struct.unpack_from("<I", data, pos + 8)[0], pos + 12
        elif vr.isalpha() and vr.isupper():
            length, value_at = struct.unpack_from("<H", data, pos + 6)[0], pos + 8
        else:  # implicit VR
            length, value_at = struct.unpack_from("<I", data, pos + 4)[0], pos + 8
        if length == 0xFFFFFFFF or value_at + length > dataset_at:
            break
        if element == 0x0010 and data[value_at:value_at + length].decode("ascii", "replace").strip("\x00 ") == tsyntax:
            span = (value_at, value_at + length)
        pos = value_at + length
    return tsyntax, dataset_at, span


def _inflated_size(src: _Source) -> int:
    """Bytes the deflated data set inflates to, measured in bounded steps (nothing kept); ScanError as soon as
    it passes the decode budget, or if the stream is damaged."""
    limit = _budget()
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    view = memoryview(src.data)[src.dataset_at:]
    total = 0
    try:
        for at in range(0, len(view), _INFLATE_IN):
            pending: bytes | memoryview = view[at:at + _INFLATE_IN]
            while pending and not inflater.eof:
                total += len(inflater.decompress(pending, _INFLATE_OUT))
                if total > limit:
                    raise ScanError(f"This DICOM file's compressed (deflated) data would inflate to more than "
                                    f"{limit / _MB:,.0f} MB, the most we decode at once; it was not opened.")
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
        while not inflater.eof:  # output zlib still holds after the last input
            out = inflater.decompress(b"", _INFLATE_OUT)
            if not out:
                break
            total += len(out)
            if total > limit:
                raise ScanError(f"This DICOM file's compressed (deflated) data would inflate to more than "
                                f"{limit / _MB:,.0f} MB, the most we decode at once; it was not opened.")
    except zlib.error:
        raise ScanError(_DAMAGED) from None
    if not inflater.eof:
        raise ScanError(_DAMAGED)
    return total


def _source(data: bytes, count: bool = True) -> _Source:
    tsyntax, dataset_at, span = _scan_meta(data)
    if tsyntax == DEFLATED and span is None:  # never hand pydicom a deflated data set it would inflate itself
        raise ScanError(_DAMAGED)
    src = _Source(data, tsyntax, dataset_at, span)
    if src.deflated and count:
        src = _Source(data, tsyntax, dataset_at, span, _inflated_size(src))
    return src


def _parse(src: _Source, *, header: bool, peek: int | None = None) -> Dataset:
    """pydicom's reading of src: the header only (stop_before_pixels; large values deferred) or all of it.

    A deflated data set is inflated here, at most src.inflated bytes (or ``peek`` / _HEADER_PEEK bytes for a
    header), and handed to pydicom behind its own file meta with the transfer syntax rewritten in place to
    explicit VR little endian (the same bytes, the shorter UID padded with NULs), so pydicom never inflates.
    """
    data = src.data
    if src.deflated:
        start, end = src.ts_value  # type: ignore[misc]
        limit = src.inflated if not header else min(src.inflated, _HEADER_PEEK) if peek is None else peek
        inflated = b""
        if limit > 0:
            try:
                inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(
                    memoryview(data)[src.dataset_at:], limit)
            except zlib.error:
                raise ScanError(_DAMAGED) from None
        explicit = str(ExplicitVRLittleEndian).encode().ljust(end - start, b"\x00")
        data = data[:start] + explicit + data[end:src.dataset_at] + inflated
        del inflated
    try:
        with warnings.catch_warnings():
            if header:  # a header cut at _HEADER_PEEK may end mid-element; the full read says so if it matters
                warnings.simplefilter("ignore")
            return pydicom.dcmread(BytesIO(data), force=True, stop_before_pixels=header,
                                   defer_size=1024 if header else None)
    except Exception:  # noqa: BLE001 - pydicom's message is not shown (privacy)
        raise ScanError(_DAMAGED) from None


@dataclass(frozen=True)
class _Geometry:
    """What the header says the pixels are: frames of rows x columns x samples of bits_allocated bits."""

    rows: int
    cols: int
    frames: int
    samples: int
    bits: int

    @classmethod
    def of(cls, ds: Dataset) -> _Geometry:
        return cls(_int(_get(ds, "Rows"), 0), _int(_get(ds, "Columns"), 0),
                   max(_int(_get(ds, "NumberOfFrames"), 1), 1), max(_int(_get(ds, "SamplesPerPixel"), 1), 1),
                   max(_int(_get(ds, "BitsAllocated"), 16), 8))

    @property
    def known(self) -> bool:
        return self.rows > 0 and self.cols > 0

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.cols * self.samples * ((self.bits + 7) // 8)

    @property
    def declared_bytes(self) -> int:
        """All frames once decoded (Rows x Columns x SamplesPerPixel x BitsAllocated/8 x NumberOfFrames)."""
        return self.frame_bytes * self.frames


def _syntax(src: _Source, ds: Dataset) -> str:
    """The transfer syntax: the file meta's, or (no meta) how pydicom parsed the data set ("" if unknown)."""
    if src.tsyntax:
        return src.tsyntax
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        return ""
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _check(geom: _Geometry, tsyntax: str, frame: int | None, max_pixels: int, min_side: int) -> int:
    """Refuse from the header alone (ScanError); returns the frame index to decode."""
    if not tsyntax:
        raise ScanError(_DAMAGED)
    try:
        available = get_decoder(UID(tsyntax)).is_available
    except Exception:  # noqa: BLE001 - unknown or unsupported syntax
        available = False
    if not available:
        raise ScanError(f"Cannot decode this DICOM's compression ({ts_name(tsyntax)}, {tsyntax}).")
    rows, cols, n_frames = geom.rows, geom.cols, geom.frames
    if not geom.known:
        raise ScanError("This DICOM file does not say how large its image is.")
    if rows * cols > max_pixels:
        raise ScanError(f"This DICOM image is {cols}x{rows} pixels, more than the {max_pixels:,} pixels we accept.")
    if rows * cols * n_frames > MAX_TOTAL_PIXELS:
        raise ScanError(
            f"This DICOM file declares {n_frames} frames of {cols}x{rows} pixels, "
            f"more than the {MAX_TOTAL_PIXELS:,} pixels in total we accept."
        )
    if geom.declared_bytes > _budget():
        raise ScanError(
            f"This DICOM file declares {n_frames} frame(s) of {cols}x{rows} pixels that would take "
            f"{geom.declared_bytes / _MB:,.0f} MB once decoded, more than the {_budget() / _MB:,.0f} MB we decode "
            "at once."
        )
    if min(rows, cols) < min_side:
        raise ScanError(f"This DICOM image is {cols}x{rows} pixels; the minimum is {min_side} pixels per side.")
    index = n_frames // 2 if frame is None else int(frame)
    if not 0 <= index < n_frames:
        raise ScanError(
            f"Frame {index} does not exist; this file has {n_frames} frame(s), numbered 0 to {n_frames - 1}."
        )
    return index


def _memory(src: _Source, geom: _Geometry) -> int:
    """Bytes one read_dicom holds besides the file: the inflated data set twice (the buffer pydicom reads and
    its copy of the values) or pydicom's copy of the pixel data, plus the decoded frame and the float32 copies
    the LUT / window steps make."""
    held = 2 * src.inflated if src.deflated else min(len(src.data), geom.declared_bytes)
    return held + geom.rows * geom.cols * geom.samples * ((geom.bits + 7) // 8 + 8)


def _jpeg_size(code: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG or JPEG-LS frame header (SOFn / SOF55), or None."""
    if code[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(code):
        if code[at] != 0xFF:
            return None
        marker = code[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            at += 2
            continue
        if marker in (0xDA, 0xD9):  # a scan or the end before any frame header
            return None
        if marker in _JPEG_SOF:
            if at + 10 > len(code):
                return None
            height, width = struct.unpack_from(">HH", code, at + 5)
            return (width, height, code[at + 9]) if height else None  # height 0: set later by DNL; refused
        at += 2 + struct.unpack_from(">H", code, at + 2)[0]
    return None


def _j2k_size(code: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG 2000 / HTJ2K SIZ segment (bare codestream or JP2 file), or None."""
    at = 0
    if code[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":  # JP2: find the contiguous codestream box
        at = 12
        while at + 8 <= len(code):
            length, kind = struct.unpack_from(">I4s", code, at)
            if kind == b"jp2c":
                at += 8
                break
            if length == 1 and at + 16 <= len(code):
                length = struct.unpack_from(">Q", code, at + 8)[0]
            if length < 8:
                return None
            at += length
    if code[at:at + 4] != b"\xff\x4f\xff\x51" or at + 42 > len(code):  # SOC then SIZ
        return None
    x, y, x0, y0 = struct.unpack_from(">IIII", code, at + 8)
    components = struct.unpack_from(">H", code, at + 40)[0]
    return (x - x0, y - y0, components) if x > x0 and y > y0 else None


def _check_codestream(ds: Dataset, tsyntax: str, geom: _Geometry, index: int) -> None:
    """A JPEG, JPEG-LS or JPEG 2000 frame is decoded to the size its own header says, whatever the DICOM header
    declares: refuse one that would be larger (or whose size cannot be read) before decoding it."""
    if tsyntax not in _JPEG_SYNTAXES and tsyntax not in _J2K_SYNTAXES:
        return
    try:
        offsets = None
        if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
            offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        code = get_frame(ds.PixelData, index, extended_offsets=offsets, number_of_frames=geom.frames)
    except Exception:  # noqa: BLE001 - broken fragments
        code = b""
    size = (_jpeg_size if tsyntax in _JPEG_SYNTAXES else _j2k_size)(code[:1024 * 1024])
    if size is None:
        raise ScanError(f"Could not decode the image in this DICOM file; the data may be damaged "
                        f"({ts_name(tsyntax)}, {tsyntax}).")
    width, height, components = size
    if width * height * components > geom.rows * geom.cols * geom.samples:
        raise ScanError(f"The compressed image in this DICOM file is {width}x{height} pixels, larger than the "
                        f"{geom.cols}x{geom.rows} its header declares; it was not decoded.")


def dicom_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a DICOM file's header alone, parsed within the same limits as read_dicom (a deflated
    data set is measured while it inflates, refused past the budget, and parsed only as far as its header);
    ScanError if it has none."""
    geom = _Geometry.of(_parse(_source(data), header=True))
    if not geom.known:
        raise ScanError("This DICOM file does not say how large its image is.")
    return geom.cols, geom.rows


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
        value = _get(ds, keyword)
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
            meta[key] = _int(value, 0) or None
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

    In order: a deflated data set is measured while it inflates (refused past the decode budget); the header
    is read and the declared size checked (pixels, frames, bytes); the memory the rest needs is reserved in
    the shared budget; only then is the whole file parsed, a compressed frame's own size checked, and decoded.
    """
    notes: list[str] = []
    src = _source(data)
    head = _parse(src, header=True)
    geom, tsyntax = _Geometry.of(head), _syntax(src, head)
    del head
    if geom.known and tsyntax:
        _check(geom, tsyntax, frame, max_pixels, min_side)
    with reader.BUDGET.reserve(_memory(src, geom), "This DICOM image"):
        ds = _parse(src, header=False)
        if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            raise ScanError("This DICOM file has no image (no pixel data).")
        if _Geometry.of(ds) != geom:  # only a deflated header longer than _HEADER_PEEK gets here
            raise ScanError(_DAMAGED)
        index = _check(geom, tsyntax, frame, max_pixels, min_side)
        if not src.tsyntax:  # no file meta (preamble-less or old ACR-NEMA style): say how it parsed
            ds.file_meta.TransferSyntaxUID = UID(tsyntax)
        _check_codestream(ds, tsyntax, geom, index)
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

    photometric = str(_get(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
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
    flip_up_down, flip_left_right = axial_display_flips(_get(ds, "ImageOrientationPatient"))
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
# never shown, logged or written). Parsed through _parse like everything else, so the same limits apply.

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
    seq = _get(ds, sequence)
    try:
        return seq[0] if seq else None
    except Exception:  # noqa: BLE001 - a malformed sequence is "absent"
        return None


def _functional(shared: Any, frame: Any, sequence: str, keyword: str) -> Any:
    """keyword from a per-frame functional group, else from the shared one (enhanced multi-frame)."""
    for group in (frame, shared):
        item = _item(group, sequence) if group is not None else None
        value = _get(item, keyword) if item is not None else None
        if value is not None:
            return value
    return None


def slice_header(data: bytes) -> SliceHeader:
    """The geometry of a DICOM file from its header alone (no pixel data decoded); ScanError if unreadable."""
    ds = _parse(_source(data), header=True)
    geom = _Geometry.of(ds)
    photometric = str(_get(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence")
    orientation = _floats(_get(ds, "ImageOrientationPatient"), 6)
    spacing = _floats(_get(ds, "PixelSpacing"), 2)
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
        pos = _floats(_get(ds, "ImagePositionPatient"), 3)
        positions = [pos] if pos is not None and geom.frames == 1 else []  # type: ignore[list-item]
    series = _get(ds, "SeriesInstanceUID")
    instance = _get(ds, "InstanceNumber")
    thickness = _float_or_none(_first(_get(ds, "SliceThickness")))
    return SliceHeader(str(series or "").strip(), geom.rows, geom.cols, geom.frames, orientation, tuple(positions),
                       spacing, None if instance in (None, "") else _int(instance, 0), thickness,
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
    src = _source(data)
    head = _parse(src, header=True)
    geom, tsyntax = _Geometry.of(head), _syntax(src, head)
    del head
    _check(geom, tsyntax, 0, MAX_PIXELS, MIN_SIDE)
    with reader.BUDGET.reserve(_memory(src, geom) + geom.declared_bytes, "This DICOM series"):
        ds = _parse(src, header=False)
        if "PixelData" not in ds:
            raise ScanError("This DICOM file has no image (no pixel data).")
        if _Geometry.of(ds) != geom:
            raise ScanError(_DAMAGED)
        if not src.tsyntax:
            ds.file_meta.TransferSyntaxUID = UID(tsyntax)
        photometric = str(_get(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
        if geom.samples > 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise ScanError("This DICOM series is in colour; only grayscale series can be checked as a volume.")
        for index in range(geom.frames):
            _check_codestream(ds, tsyntax, geom, index)
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
        per_frame = _get(ds, "PerFrameFunctionalGroupsSequence")
        groups = list(per_frame)[: geom.frames] if per_frame else [None] * geom.frames
        for i, group in enumerate(groups):
            s = _float_or_none(_functional(shared, group, "PixelValueTransformationSequence", "RescaleSlope"))
            b = _float_or_none(_functional(shared, group, "PixelValueTransformationSequence", "RescaleIntercept"))
            s = s if s is not None else _float_or_none(_get(ds, "RescaleSlope"))
            b = b if b is not None else _float_or_none(_get(ds, "RescaleIntercept"))
            slope[i] = s if s not in (None, 0.0) else 1.0
            intercept[i] = b or 0.0
        meta = _metadata(ds, tsyntax, geom.frames)
    return Frames(arr, slope, intercept, photometric == "MONOCHROME1", meta)
