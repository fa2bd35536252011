"""Parsing a DICOM file within the shared decode budget (brainscan.scans.dicom's reading goes through here).

pydicom never inflates a deflated data set itself (it would inflate all of it inside ``dcmread``): the stream is
inflated here in bounded steps and refused as soon as it passes the decode budget, and only then handed to pydicom
as explicit VR little endian. The header is read first (``stop_before_pixels``); the declared frames (native or
compressed) and the size a compressed codestream itself declares are checked against the budget before anything
is decoded.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.filereader import _read_file_meta_info, read_preamble  # group 0002 only: pydicom's own reading
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from brainscan.errors import ScanError
from brainscan.scans import reader
from brainscan.scans.pixels import MAX_PIXELS

log = logging.getLogger(__name__)

# Rows * Columns * frames limit for the whole file (we decode one frame, but a
# header declaring an absurd total is refused anyway).
MAX_TOTAL_PIXELS: int = 10 * MAX_PIXELS

DAMAGED = "This DICOM file is damaged or incomplete and could not be read."

# Transfer syntaxes newer than pydicom 3.0's UID dictionary.
_EXTRA_TS_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression",
}


def ts_name(uid: str) -> str:
    """Human name of a transfer syntax UID ("unknown transfer syntax" if unknown)."""
    uid = str(uid)
    if uid in _EXTRA_TS_NAMES:
        return _EXTRA_TS_NAMES[uid]
    name = UID(uid).name
    return name if name and name != uid else "unknown transfer syntax"


def get_element(ds: Dataset, keyword: str) -> Any:
    """An element's value, or None when it is absent or malformed (never an exception)."""
    try:
        return ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed safe element is just "absent"
        return None


def to_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default

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


def decode_budget() -> int:
    """The most bytes one decode may hold: the shared budget's single-decode limit."""
    return min(reader.BUDGET.total, reader.MAX_DECODED_BYTES)


@dataclass(frozen=True)
class DicomSource:
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


def _inflated_size(src: DicomSource) -> int:
    """Bytes the deflated data set inflates to, measured in bounded steps (nothing kept); ScanError as soon as
    it passes the decode budget, or if the stream is damaged."""
    limit = decode_budget()
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
        raise ScanError(DAMAGED) from None
    if not inflater.eof:
        raise ScanError(DAMAGED)
    return total


def open_source(data: bytes, count: bool = True) -> DicomSource:
    tsyntax, dataset_at, span = _scan_meta(data)
    if tsyntax == DEFLATED and span is None:  # never hand pydicom a deflated data set it would inflate itself
        raise ScanError(DAMAGED)
    src = DicomSource(data, tsyntax, dataset_at, span)
    if src.deflated and count:
        src = DicomSource(data, tsyntax, dataset_at, span, _inflated_size(src))
    return src


def parse_dataset(src: DicomSource, *, header: bool, peek: int | None = None) -> Dataset:
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
                raise ScanError(DAMAGED) from None
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
        raise ScanError(DAMAGED) from None


@dataclass(frozen=True)
class Geometry:
    """What the header says the pixels are: frames of rows x columns x samples of bits_allocated bits."""

    rows: int
    cols: int
    frames: int
    samples: int
    bits: int

    @classmethod
    def of(cls, ds: Dataset) -> Geometry:
        return cls(to_int(get_element(ds, "Rows"), 0), to_int(get_element(ds, "Columns"), 0),
                   max(to_int(get_element(ds, "NumberOfFrames"), 1), 1),
                   max(to_int(get_element(ds, "SamplesPerPixel"), 1), 1),
                   max(to_int(get_element(ds, "BitsAllocated"), 16), 8))

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


def syntax_of(src: DicomSource, ds: Dataset) -> str:
    """The transfer syntax: the file meta's, or (no meta) how pydicom parsed the data set ("" if unknown)."""
    if src.tsyntax:
        return src.tsyntax
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        return ""
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def check_frames(geom: Geometry, tsyntax: str, frame: int | None, max_pixels: int, min_side: int) -> int:
    """Refuse from the header alone (ScanError); returns the frame index to decode."""
    if not tsyntax:
        raise ScanError(DAMAGED)
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
    if geom.declared_bytes > decode_budget():
        raise ScanError(
            f"This DICOM file declares {n_frames} frame(s) of {cols}x{rows} pixels that would take "
            f"{geom.declared_bytes / _MB:,.0f} MB once decoded, more than the {decode_budget() / _MB:,.0f} MB we "
            "decode at once."
        )
    if min(rows, cols) < min_side:
        raise ScanError(f"This DICOM image is {cols}x{rows} pixels; the minimum is {min_side} pixels per side.")
    index = n_frames // 2 if frame is None else int(frame)
    if not 0 <= index < n_frames:
        raise ScanError(
            f"Frame {index} does not exist; this file has {n_frames} frame(s), numbered 0 to {n_frames - 1}."
        )
    return index


def memory_needed(src: DicomSource, geom: Geometry) -> int:
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


def check_codestream(ds: Dataset, tsyntax: str, geom: Geometry, index: int) -> None:
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
    geom = Geometry.of(parse_dataset(open_source(data), header=True))
    if not geom.known:
        raise ScanError("This DICOM file does not say how large its image is.")
    return geom.cols, geom.rows
