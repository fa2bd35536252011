"""DICOM decompression and declared-size bombs, built small in memory (or streamed to a file).

Shared by tests/test_dicom_bombs.py and usable by hand:

    python tests/dicom_bombs.py bomb.dcm        # the 1 MB deflated file that inflates to a 1 GB PixelData
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Iterator

GIB = 1 << 30
DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian


def _file_meta(transfer_syntax: str) -> bytes:
    """128 zero bytes, "DICM" and a file meta group naming transfer_syntax (MR Image Storage)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, MRImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_file_meta_info(fp, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + fp.getvalue()


def _mr_header(**elements: object) -> bytes:
    """An explicit-VR little-endian dataset without pixel data: MR, 256x256, 8-bit MONOCHROME2."""
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pydicom.uid import MRImageStorage

    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "DOE-4711"
    ds.Modality = "MR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = 256, 256
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def deflate_bomb_chunks(pixel_bytes: int = GIB, chunk: int = 16 << 20) -> Iterator[bytes]:
    """The deflated-dataset bomb, piece by piece: meta, then raw deflate (wbits -15) of an explicit-VR LE
    dataset ending in an OB PixelData of pixel_bytes zero bytes. Never holds more than one chunk."""
    yield _file_meta(DEFLATED)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    yield comp.compress(_mr_header() + b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", pixel_bytes))
    zeros = bytes(chunk)
    left = pixel_bytes
    while left:
        n = min(left, chunk)
        out = comp.compress(zeros if n == chunk else bytes(n))
        if out:
            yield out
        left -= n
    yield comp.flush()


def deflate_bomb(pixel_bytes: int = GIB) -> bytes:
    """The whole deflated bomb as bytes (about 1 MB for the default 1 GiB PixelData)."""
    return b"".join(deflate_bomb_chunks(pixel_bytes))


def write_deflate_bomb(path: str, pixel_bytes: int = GIB) -> int:
    size = 0
    with open(path, "wb") as fh:
        for piece in deflate_bomb_chunks(pixel_bytes):
            fh.write(piece)
            size += len(piece)
    return size


def deflated_dicom(pixels, **elements: object) -> bytes:
    """A normal, small Deflated Explicit VR Little Endian file of pixels (uint8 or uint16, H x W)."""
    import numpy as np
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    arr = np.ascontiguousarray(pixels)
    bits = arr.dtype.itemsize * 8
    header = _mr_header(Rows=arr.shape[0], Columns=arr.shape[1], BitsAllocated=bits, BitsStored=bits,
                        HighBit=bits - 1, **elements)
    data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    vr = b"OB" if bits == 8 else b"OW"
    body = header + b"\xe0\x7f\x10\x00" + vr + b"\x00\x00" + struct.pack("<I", len(data)) + data
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return _file_meta(DeflatedExplicitVRLittleEndian) + comp.compress(body) + comp.flush()


def encapsulated_bomb(transfer_syntax: str, *, rows: int = 65535, columns: int = 65535, frames: int = 1,
                      samples: int = 1, bits: int = 8, fragment: bytes = b"\xff\xd8\xff\xd9") -> bytes:
    """A tiny file under a compressed transfer syntax whose header declares huge frames (a fake fragment)."""
    from pydicom.encaps import encapsulate

    elements: dict[str, object] = {"Rows": rows, "Columns": columns, "SamplesPerPixel": samples,
                                   "BitsAllocated": bits, "BitsStored": bits, "HighBit": bits - 1}
    if samples == 3:
        elements.update(PhotometricInterpretation="RGB", PlanarConfiguration=0)
    if frames > 1:
        elements["NumberOfFrames"] = frames
    header = _mr_header(**elements)
    pixel_data = encapsulate([fragment] * frames)
    delimiter = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # encapsulate() writes the items, not the end of them
    body = header + b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff" + pixel_data + delimiter
    return _file_meta(transfer_syntax) + body


def native_bomb(*, rows: int = 65535, columns: int = 65535, frames: int = 1, bits: int = 16,
                pixel_bytes: int = 1024) -> bytes:
    """Explicit VR Little Endian, a header declaring a huge image, and a short PixelData (declared length kept
    honest: what is there is all there is)."""
    from pydicom.uid import ExplicitVRLittleEndian

    elements: dict[str, object] = {"Rows": rows, "Columns": columns, "BitsAllocated": bits, "BitsStored": bits,
                                   "HighBit": bits - 1}
    if frames > 1:
        elements["NumberOfFrames"] = frames
    header = _mr_header(**elements)
    vr = b"OB" if bits == 8 else b"OW"
    return _file_meta(ExplicitVRLittleEndian) + header + b"\xe0\x7f\x10\x00" + vr + b"\x00\x00" + struct.pack(
        "<I", pixel_bytes) + bytes(pixel_bytes)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "bomb.dcm"
    print(f"{out}: {write_deflate_bomb(out):,} bytes")
