"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

import numpy as np
import pytest


@pytest.fixture
def make_dicom() -> Callable[..., bytes]:
    """Factory: ``make_dicom(pixels, preamble=True, meta=True, **elements) -> bytes``.

    ``pixels`` is (H, W) or (frames, H, W), uint8/uint16/int16. Every file carries
    PatientName "Doe^Jane" and PatientID "DOE-4711" unless overridden, so
    privacy checks can look for them.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    def build(pixels: np.ndarray, *, preamble: bool = True, meta: bool = True, **elements: object) -> bytes:
        arr = np.asarray(pixels)
        ds = Dataset()
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.PatientName = "Doe^Jane"
        ds.PatientID = "DOE-4711"
        ds.PatientBirthDate = "19800101"
        ds.Modality = "MR"
        ds.SeriesDescription = "T1 AX"
        ds.Rows, ds.Columns = arr.shape[-2:]
        if arr.ndim == 3:
            ds.NumberOfFrames = arr.shape[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        bits = arr.dtype.itemsize * 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
        ds.PixelRepresentation = int(arr.dtype.kind == "i")
        for keyword, value in elements.items():
            setattr(ds, keyword, value)
        ds.PixelData = arr.tobytes()
        if meta:
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buf = BytesIO()
        if meta:
            ds.save_as(buf, enforce_file_format=preamble)
        else:
            ds.save_as(buf, implicit_vr=True, little_endian=True, enforce_file_format=False)
        return buf.getvalue()

    return build


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> str:
    """A 4-class phantom dataset (notumor: no lesion; tumor classes: lesions of different sizes)."""
    from brainscan.scans.synthetic import write_dataset

    root = tmp_path_factory.mktemp("phantoms")
    write_dataset(root, per_class=16, size=48, classes=("glioma", "meningioma", "notumor", "pituitary"))
    return str(root)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_dataset) -> str:
    """A real model folder trained for a few epochs by brainscan.training.run on phantoms (32x32 input)."""
    from brainscan.training.run import TrainConfig, run

    out = tmp_path_factory.mktemp("runs") / "tiny"
    run(TrainConfig(data=tiny_dataset, out=str(out), epochs=3, img_size=32, batch_size=16, patience=3,
                    name="tiny-test-model"))
    return str(out)


def pytest_collection_modifyitems(items):
    """Every test that needs the session model (tiny_model, directly or through another fixture) trains it
    when it runs first, so it carries the slow marker: `-m "not slow"` skips them all."""
    for item in items:
        if "tiny_model" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
