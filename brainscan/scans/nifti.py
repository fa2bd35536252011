"""NIfTI-1 and NIfTI-2 volumes (.nii, .nii.gz) -> :class:`brainscan.scans.volume.Volume`, within the limits.

The header is parsed by nibabel from the first bytes alone (a .nii.gz is inflated only that far), and the
declared size is checked (brainscan.scans.volume.check_size: voxels, slices, decoded bytes) before any voxel
is read. A .nii.gz is then inflated in bounded steps into one buffer of exactly the declared size inside the
shared decode budget (brainscan.scans.reader.BUDGET): never more, whatever the stream holds, and a stream that
ends early is refused as truncated. The voxels are a view of that buffer (or of the file's bytes for .nii):
no float copy. nibabel is imported only when a NIfTI file arrives.

Privacy: only the geometry, size, data type and scaling are read; the header's free-text fields (descrip,
aux_file, intent_name, db_name) and extensions never are.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

import numpy as np

from brainscan.errors import MultiVolumeError, ScanError  # noqa: F401 - MultiVolumeError: raised here, imported from here by callers
from brainscan.scans import reader
from brainscan.scans import volume as vol

GZIP_MAGIC = b"\x1f\x8b"
_HEADER_BYTES = 540  # NIfTI-2's header (NIfTI-1's is 348)
_INFLATE_IN = 256 * 1024
_INFLATE_OUT = 4 * 1024 * 1024
_DTYPES = frozenset("u1 i1 i2 u2 i4 u4 f4 f8 i8 u8".split())


def _label(name: str) -> str:
    return reader.label_of(name)


def _sizeof(head: bytes) -> tuple[int, str] | None:
    """(1 or 2, byte order) when head starts like a NIfTI-1 / NIfTI-2 single file, else None."""
    if len(head) < 348:
        return None
    for order in "<>":
        size = struct.unpack_from(order + "i", head, 0)[0]
        if size == 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
            return 1, order
        if size == 540 and len(head) >= 12 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
            return 2, order
    return None


def _gunzip_head(data: bytes, n: int) -> bytes:
    """The first n inflated bytes of a gzip stream (b"" if it is not one or is damaged there)."""
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return d.decompress(data[: 64 * 1024], n)
    except zlib.error:
        return b""


def looks_like_nifti(data: bytes, name: str = "") -> bool:
    """A NIfTI single file, plain or gzip-compressed, by content (the name only breaks ties for gzip)."""
    head = _gunzip_head(data, _HEADER_BYTES) if data[:2] == GZIP_MAGIC else data[:_HEADER_BYTES]
    if _sizeof(head) is not None:
        return True
    return data[:2] == GZIP_MAGIC and name.lower().endswith(".nii.gz") and len(head) < 348


def _header(head: bytes, label: str):
    import nibabel as nib

    kind = _sizeof(head)
    if kind is None:
        raise ScanError(f"{label} is not a NIfTI file we can read (its header is missing or cut short).")
    version, _ = kind
    magic = head[344:348] if version == 1 else head[4:8]
    if magic[1:2] == b"i":
        raise ScanError(f"{label} is the header of a NIfTI pair (.hdr + .img); save the volume as one .nii or "
                        ".nii.gz file.")
    cls = nib.Nifti1Header if version == 1 else nib.Nifti2Header
    size = 348 if version == 1 else 540
    try:
        return version, cls.from_fileobj(BytesIO(head[:size]), check=False)
    except Exception:  # noqa: BLE001 - nibabel's text is not shown
        raise ScanError(f"{label} has a damaged NIfTI header.") from None


def _affine(hdr, label: str, notes: list[str]) -> np.ndarray:
    try:
        sform, qform = int(hdr["sform_code"]), int(hdr["qform_code"])
        affine = np.asarray(hdr.get_best_affine(), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a damaged quaternion or matrix
        raise ScanError(f"{label} has a damaged voxel-to-world matrix in its header.") from None
    if sform == 0 and qform == 0:
        notes.append("The header gives no orientation (sform and qform codes are 0): the voxel order was taken as "
                     "NIfTI's default (left-right flipped, anterior and superior up); left and right may be wrong.")
    vol.check_affine(label, affine)
    return affine


def volume_count(data: bytes, name: str = "") -> int:
    """How many 3-D volumes a NIfTI file holds, from its header alone (1 for a 3-D file); ScanError if unreadable."""
    label = _label(name)
    head = _gunzip_head(data, _HEADER_BYTES) if data[:2] == GZIP_MAGIC else bytes(data[:_HEADER_BYTES])
    _, hdr = _header(head, label)
    try:
        shape = tuple(int(d) for d in hdr.get_data_shape())
    except Exception:  # noqa: BLE001
        raise ScanError(f"{label} has a damaged NIfTI header.") from None
    return int(np.prod(shape[3:])) if len(shape) > 3 else 1


def read_nifti(data: bytes, name: str = "", volume: int | None = None) -> vol.Volume:
    """A NIfTI file's bytes -> Volume. A 4-D file needs ``volume`` (0-based), else MultiVolumeError says how many
    it holds. ScanError (one sentence) for anything that cannot be used."""
    label = _label(name)
    compressed = data[:2] == GZIP_MAGIC
    head = _gunzip_head(data, _HEADER_BYTES) if compressed else bytes(data[:_HEADER_BYTES])
    if compressed and len(head) < 348:
        raise ScanError(f"{label} is a damaged or truncated .nii.gz file (its header could not be inflated).")
    version, hdr = _header(head, label)
    try:
        shape = tuple(int(d) for d in hdr.get_data_shape())
        dtype = np.dtype(hdr.get_data_dtype())
        offset = int(hdr.get_data_offset())
        slope, inter = hdr.get_slope_inter()
    except Exception:  # noqa: BLE001
        raise ScanError(f"{label} has a damaged NIfTI header.") from None
    if dtype.kind == "V" or dtype.str[1:] not in _DTYPES:
        raise ScanError(f"{label} stores its voxels as {dtype} (e.g. colour or complex); only grayscale volumes "
                        "can be checked.")
    if len(shape) < 3 or min(shape) < 1:
        raise ScanError(f"{label} holds {'x'.join(map(str, shape)) or 'no'} voxels, not a 3-D volume.")
    extra = shape[3:]
    n_volumes = int(np.prod(extra)) if extra else 1
    if len(extra) > 1 and any(d > 1 for d in extra[1:]):
        raise ScanError(f"{label} has {len(shape)} dimensions ({' x '.join(map(str, shape))}); only 3-D volumes and "
                        "4-D series can be read.")
    vol.check_size(label, shape[:3], dtype.itemsize)
    notes: list[str] = []
    if n_volumes > 1:
        if volume is None:
            raise MultiVolumeError(f"{label} holds {n_volumes} volumes (a 4-D series such as DWI or fMRI); choose "
                                   f"one of them, numbered 0 to {n_volumes - 1}.", n_volumes)
        if not 0 <= int(volume) < n_volumes:
            raise ScanError(f"Volume {volume} does not exist; {label} holds volumes 0 to {n_volumes - 1}.")
        notes.append(f"Volume {int(volume)} of the {n_volumes} in this 4-D file.")
    index = int(volume or 0)
    affine = _affine(hdr, label, notes)
    per_volume = int(np.prod(shape[:3])) * dtype.itemsize
    if offset < (352 if version == 1 else 544) - 4:
        raise ScanError(f"{label} has a damaged NIfTI header (its voxels would start inside the header).")
    start, end = offset + index * per_volume, offset + (index + 1) * per_volume
    with reader.BUDGET.reserve(per_volume if compressed else 0, label):
        buffer = _inflate(data, end, label) if compressed else data
        if len(buffer) < end:
            raise ScanError(f"{label} is truncated: its header declares {end:,} bytes of voxels and header, the "
                            f"file holds {len(buffer):,}.")
        raw = np.ndarray(shape[:3], dtype=dtype, buffer=buffer, offset=start, order="F")
        raw.flags.writeable = False
        window = vol.window_of(raw)
    invert = slope is not None and np.isfinite(slope) and slope < 0
    meta = {"format": f"NIfTI-{version}" + (" (gzip)" if compressed else ""), "data_type": str(dtype.name),
            "stored_size": list(shape), "sform_code": int(hdr["sform_code"]), "qform_code": int(hdr["qform_code"])}
    if slope is not None and np.isfinite(slope) and (slope, inter) != (1.0, 0.0):
        meta["scaling"] = [float(slope), float(inter or 0.0)]
        notes.append(f"Stored values are scaled by {slope:g} and offset by {inter or 0:g} (scl_slope, scl_inter); "
                     "the display window follows the scaled values.")
    return vol.build(raw, affine, name=name, kind="nifti", notes=notes, metadata=meta, window=window, invert=invert)


def _inflate(data: bytes, size: int, label: str) -> bytearray:
    """The first ``size`` bytes of a gzip stream (multi-member too), inflated in bounded steps into one buffer;
    fewer when the stream ends first (the caller refuses it as truncated). Never inflates past ``size``."""
    out = bytearray(size)
    view = memoryview(out)
    pos, at = 0, 0
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending: bytes = b""
    try:
        while pos < size:
            if not pending:
                if d.eof:
                    rest = d.unused_data
                    if not rest:
                        break
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a further gzip member
                    pending = rest
                elif at >= len(data):
                    break
                else:
                    pending = data[at:at + _INFLATE_IN]
                    at += len(pending)
            chunk = d.decompress(pending, min(_INFLATE_OUT, size - pos))
            pending = d.unconsumed_tail
            view[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
            if not chunk and not pending and d.eof and not d.unused_data:
                break
    except zlib.error:
        raise ScanError(f"{label} is a damaged .nii.gz file (its compressed data is corrupt).") from None
    finally:
        view.release()
    if pos < size:
        return out[:pos]
    return out
