"""Free-text DICOM fields never reach the screen (issue 23): an identifier typed into every operator-typed and
patient field of a DICOM appears nowhere in what brainscan exposes: the scan's metadata and notes, the page's
metadata table, the PDF report (its text and its document information) and the image zip."""

from __future__ import annotations

import datetime as dt
import io
import re
import struct
import warnings
import zipfile

import numpy as np
import pytest
from pydicom.datadict import dictionary_VR

from brainscan.app import report, ui
from brainscan.cam.overlay import gradcam_overlay
from brainscan.check import check_bytes
from brainscan.scans.dicom import SAFE_TAGS
from brainscan.scans.io import load_scan
from brainscan.scans.synthetic import phantom

pypdf = pytest.importorskip("pypdf")

IDENTIFIER = "PATIENT^JOHN 1234 born 1970-01-01"
SECRETS = ("PATIENT", "JOHN", "John", "1234", "1970", "born")

# Every field an operator or a registration desk types, the patient module, and coded strings a hand can fill.
FREE_TEXT = (
    "PatientName", "PatientID", "OtherPatientIDs", "PatientAddress", "PatientComments", "PatientBirthName",
    "PatientMotherBirthName", "IssuerOfPatientID", "EthnicGroup", "Occupation", "AdditionalPatientHistory",
    "MilitaryRank", "BranchOfService", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "NameOfPhysiciansReadingStudy", "RequestingPhysician", "PhysiciansOfRecord", "InstitutionName",
    "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "Manufacturer", "ManufacturerModelName",
    "DeviceSerialNumber", "SoftwareVersions", "StudyDescription", "SeriesDescription", "ProtocolName",
    "PerformedProcedureStepDescription", "RequestedProcedureDescription", "AccessionNumber", "StudyID",
    "ImageComments", "DerivationDescription", "ContrastBolusAgent", "SequenceName", "WindowCenterWidthExplanation",
    "AcquisitionDeviceProcessingDescription", "ReasonForStudy", "RequestedProcedureID", "AdmittingDiagnosesDescription",
    "BodyPartExamined", "PatientSex", "PatientPosition", "ScanOptions", "ImageType",
)
DATES = {"DA": "19700101", "TM": "123400", "DT": "19700101123400", "AS": "054Y"}
DATE_FIELDS = ("PatientBirthDate", "PatientBirthTime", "StudyDate", "SeriesDate", "AcquisitionDate",
               "ContentDate", "StudyTime", "SeriesTime", "AcquisitionDateTime", "PatientAge", "InstanceCreationDate")


def identified_dicom(make_dicom, modality: str = "MR", photometric: str | None = None) -> bytes:
    img = np.rint(phantom(96, lesion=True, seed=3)[0] * 1000).astype(np.uint16)
    fields: dict[str, object] = {k: IDENTIFIER for k in FREE_TEXT}
    fields.update({k: DATES[dictionary_VR(k)] for k in DATE_FIELDS})
    fields.update(Modality=modality, WindowCenter=500, WindowWidth=1000, PixelSpacing=[0.9, 0.9],
                  SliceThickness=5, ImageOrientationPatient=[1, 0, 0, 0, 1, 0])
    if photometric:
        fields["PhotometricInterpretation"] = photometric
    with warnings.catch_warnings():  # values too long or not allowed for their VR: written anyway, as a hand might
        warnings.simplefilter("ignore")
        data = make_dicom(img, **fields)
    assert data.count(IDENTIFIER.encode()) >= len(FREE_TEXT) - 5  # the identifier really is in the file
    return data


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} in {where}: {text[:400]!r}"
    assert not re.search(r"19700101|1970|12:34|123400", text), where


def png_text_chunks(png: bytes) -> bytes:
    """Every chunk of a PNG except the pixel data (IDAT): where text could hide."""
    out, at = b"", 8
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        if kind != b"IDAT":
            out += kind + png[at + 8:at + 8 + length]
        at += 12 + length
    return out


@pytest.fixture(scope="module")
def model(tiny_model):
    from brainscan.runtime.inference import load_model

    return load_model(tiny_model)


def test_metadata_holds_nothing_typed(make_dicom):
    scan = load_scan(identified_dicom(make_dicom), "IM0001")
    assert set(scan.metadata) == set(SAFE_TAGS) | {"window"}
    assert_clean(repr(scan) + str(scan.metadata) + " ".join(scan.notes), "the scan")
    assert_clean(str(ui.metadata_rows(scan.metadata)), "the page's metadata table")
    # what is left is useful: codes, numbers and our own words
    assert scan.metadata["modality"] == "MR" and scan.metadata["orientation"] == "axial"
    assert scan.metadata["pixel_spacing"] == [0.9, 0.9] and scan.metadata["slice_thickness"] == 5.0
    assert scan.metadata["body_part"] is None  # the identifier is no defined term
    for value in scan.metadata.values():
        assert value is None or isinstance(value, (int, float, list)) or len(str(value)) <= 64


def test_coded_fields_and_colour_note_hold_nothing_typed(make_dicom):
    scan = load_scan(identified_dicom(make_dicom, modality="JOHN 1234"), "IM0001")
    assert scan.metadata["modality"] is None
    assert_clean(str(scan.metadata) + " ".join(scan.notes), "the scan")


def test_report_pdf_and_image_zip_hold_nothing_typed(model, make_dicom):
    from brainscan.runtime import uncertainty

    result = check_bytes(model, identified_dicom(make_dicom), "IM0001")
    overlay = gradcam_overlay(result.scan.pixels, result.heatmap.original, 0.4)
    u = uncertainty.assess(model, result.prepared.input, {"signal": "tta_spread", "threshold": 0.5})
    pdf = report.build_pdf(result, overlay, "Heatmap: Grad-CAM, opacity 40%", model.card, model.path, u, None,
                           when=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC))
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "MR" in text and "IM0001" in text  # the page does show the allow-listed metadata and the file name
    assert_clean(text, "the PDF's text")
    assert_clean(str(dict(reader.metadata or {})), "the PDF's document information")

    data = report.panels_zip(result, overlay, pdf)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert_clean(" ".join(z.namelist()) + z.comment.decode("latin-1"), "the zip's names")
        for info in z.infolist():
            member = z.read(info)
            assert_clean(info.comment.decode("latin-1") + info.extra.decode("latin-1"), info.filename)
            if info.filename.endswith(".png"):
                assert_clean(png_text_chunks(member).decode("latin-1"), info.filename)
            elif info.filename.endswith(".pdf"):
                inner = pypdf.PdfReader(io.BytesIO(member))
                assert_clean("\n".join(p.extract_text() for p in inner.pages), info.filename)
