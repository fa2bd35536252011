"""The bad-input catalogue, built in memory: name -> (file name, bytes, words the error must contain).

Shared by the command-line, app and browser tests so every surface is held to the same refusals.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

import numpy as np
from PIL import Image


def png_bytes(arr: np.ndarray) -> bytes:
    buf = BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(arr: np.ndarray) -> bytes:
    buf = BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def patch_png_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width/height (and its CRC) of a PNG without touching the data."""
    body = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + body + struct.pack(">I", zlib.crc32(body)) + png[33:]


def dicom_without_pixels() -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    ds.PatientName, ds.Modality = "Doe^Jane", "MR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def dicom_unsupported_compression() -> bytes:
    """pydicom's MR_small with junk encapsulated data under the JPEG XL transfer syntax."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"  # same length as JPEG XL's UID
    ds.PixelData = encapsulate([b"\x00" * 100])
    ds["PixelData"].VR = "OB"
    buf = BytesIO()
    ds.save_as(buf)
    return buf.getvalue().replace(b"1.2.840.10008.1.2.4.201\x00", b"1.2.840.10008.1.2.4.110\x00")


def catalogue() -> dict[str, tuple[str, bytes, str]]:
    gradient = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    noisy = jpeg_bytes(np.random.default_rng(0).integers(0, 256, (128, 128), dtype=np.uint8))
    return {
        "empty": ("empty.png", b"", "empty"),
        "truncated_jpeg": ("cut.jpg", noisy[: len(noisy) // 2], "truncated"),
        "text_as_png": ("notes.png", b"hello, this is not an image\n" * 20, "not an image"),
        "text_as_dcm": ("notes.dcm", b"hello, this is not a DICOM file\n" * 20, "not an image"),
        "dicom_without_pixels": ("nopix.dcm", dicom_without_pixels(), "no pixel data"),
        "one_pixel": ("dot.png", png_bytes(np.zeros((1, 1), np.uint8)), "minimum"),
        "decompression_bomb": ("bomb.png", patch_png_size(png_bytes(gradient), 50_000, 50_000), "pixels"),
        "unsupported_compression": ("jxl.dcm", dicom_unsupported_compression(), "JPEG XL"),
    }
