"""The shipped sample_images/: real public slices (and DICOM files the project writes around one), documented
with source and licence, loadable, and free of patient identifiers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from brainscan.scans.io import is_dicom, load_scan

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images"
README = SAMPLES / "README.md"
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "README.md")
DICOM_FILES = [p for p in SAMPLE_FILES if is_dicom(p.read_bytes())]

FAKE_NAME = "Anonymous^Sample"
SOURCE_CASE = "TCGA_EZ_7264_20010816"  # the source slices' case: its code holds a date, so no header may name it


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_expected_files_present_and_small() -> None:
    names = {p.name for p in SAMPLE_FILES}
    for name in ("lgg_glioma_flair.png", "lgg_glioma_t1c.png", "lgg_glioma_flair_16bit.png", "lgg_glioma_flair.dcm",
                 "lgg_glioma_multiframe", "lgg_glioma_monochrome1.dcm", "brats_glioma_t1c.png", "ixi_healthy_t1.png",
                 "ms_flair_no_tumour.png", "not_mri_photo.png"):
        assert name in names
    assert not any(n.startswith(("template_", "phantom_")) for n in names)  # the synthetic lesions are gone
    assert sum(p.stat().st_size for p in SAMPLES.iterdir() if p.is_file()) < 2 * 1024 * 1024


def test_every_real_slice_names_an_allowed_source_and_licence() -> None:
    text = README.read_text(encoding="utf-8")
    for row in [line for line in text.splitlines() if line.startswith("| `")]:
        name = row.split("`")[1]
        if name == "not_mri_photo.png":
            continue
        assert any(lic in row for lic in ("CC BY 3.0", "CC BY-NC-SA 3.0", "CC BY-SA 3.0", "CC BY;", "As above",
                                          "As `lgg_glioma_flair.png`", "Pixels as `lgg_glioma_flair.png`")), row
    assert "brain-tumor-mri" not in text.split("Never used here")[0]


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=_ids(SAMPLE_FILES))
def test_every_file_is_described_in_readme(path: Path) -> None:
    assert f"`{path.name}`" in README.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=_ids(SAMPLE_FILES))
def test_every_file_loads(path: Path) -> None:
    scan = load_scan(path.read_bytes(), path.name)
    assert min(scan.pixels.shape) >= 190
    assert scan.pixels.dtype == np.float32
    assert float(scan.pixels.max()) - float(scan.pixels.min()) > 0.5  # real contrast, not a blank image


def test_dicom_files_are_recognised_by_content() -> None:
    assert {p.name for p in DICOM_FILES} == {"lgg_glioma_flair.dcm", "lgg_glioma_monochrome1.dcm",
                                             "lgg_glioma_multiframe"}
    for path in DICOM_FILES:
        assert load_scan(path.read_bytes(), path.name).kind == "dicom"


def test_multiframe_has_frames_and_no_extension() -> None:
    path = SAMPLES / "lgg_glioma_multiframe"
    assert path.suffix == ""
    data = path.read_bytes()
    scan = load_scan(data, path.name)
    assert scan.kind == "dicom"
    assert scan.n_frames > 1
    assert scan.metadata["frames"] == scan.n_frames
    first, last = load_scan(data, path.name, 0), load_scan(data, path.name, scan.n_frames - 1)
    assert not np.allclose(first.pixels, last.pixels)  # different slices, not one frame repeated
    # The default (middle) frame is the slice of the single-frame lesion file.
    single = load_scan((SAMPLES / "lgg_glioma_flair.dcm").read_bytes(), "lgg_glioma_flair.dcm").pixels
    assert np.corrcoef(scan.pixels.ravel(), single.ravel())[0, 1] > 0.99


def test_monochrome1_looks_like_monochrome2() -> None:
    pydicom = pytest.importorskip("pydicom")
    mono1 = SAMPLES / "lgg_glioma_monochrome1.dcm"
    mono2 = SAMPLES / "lgg_glioma_flair.dcm"
    assert pydicom.dcmread(mono1, stop_before_pixels=True).PhotometricInterpretation == "MONOCHROME1"
    assert pydicom.dcmread(mono2, stop_before_pixels=True).PhotometricInterpretation == "MONOCHROME2"
    a = load_scan(mono1.read_bytes(), mono1.name)
    b = load_scan(mono2.read_bytes(), mono2.name)
    assert a.metadata["photometric_interpretation"] == "MONOCHROME1"
    assert np.corrcoef(a.pixels.ravel(), b.pixels.ravel())[0, 1] > 0.95
    assert float(np.abs(a.pixels - b.pixels).max()) < 0.01
    assert float(a.pixels[:8, :8].mean()) < 0.1  # background is dark once inverted


def test_dicom_and_png_versions_agree() -> None:
    dcm = load_scan((SAMPLES / "lgg_glioma_flair.dcm").read_bytes(), "lgg_glioma_flair.dcm").pixels
    png8 = load_scan((SAMPLES / "lgg_glioma_flair.png").read_bytes(), "lgg_glioma_flair.png").pixels
    png16 = load_scan((SAMPLES / "lgg_glioma_flair_16bit.png").read_bytes(), "x.png")
    assert png16.metadata["mode"].startswith("I;16")
    assert float(np.abs(dcm - png8).max()) < 2 / 255
    stretched = (png8 - png8.min()) / (png8.max() - png8.min())  # BrainScan stretches a 16-bit image's range
    assert float(np.abs(png16.pixels - stretched).max()) < 3 / 255


@pytest.mark.parametrize("path", DICOM_FILES, ids=_ids(DICOM_FILES))
def test_dicom_headers_hold_no_real_patient_data(path: Path) -> None:
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert str(ds.PatientName) == FAKE_NAME
    assert ds.Modality == "MR"
    for elem in ds.iterall():
        if elem.VR == "PN":  # only the anonymous patient name; every other person name empty
            assert str(elem.value or "") in ("", FAKE_NAME), elem.keyword
        elif elem.VR in ("DA", "DT", "TM"):  # no dates or times at all
            assert not elem.value, elem.keyword
        elif "PatientID" in elem.keyword or elem.keyword in ("OtherPatientIDsSequence", "IssuerOfPatientID"):
            assert not elem.value, elem.keyword  # no patient code, not even a made-up one
        elif isinstance(elem.value, str):  # no text names the source case or holds a date
            assert "TCGA_" not in elem.value and not re.search(r"(19|20)\d\d[01]\d[0-3]\d", elem.value), elem.keyword
    for keyword in ("PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientAddress", "OtherPatientIDs",
                    "InstitutionName", "InstitutionAddress", "OperatorsName", "PerformingPhysicianName",
                    "AccessionNumber", "DeviceSerialNumber", "StationName"):
        assert not ds.get(keyword), keyword
    raw = path.read_bytes()
    assert SOURCE_CASE.encode() not in raw and b"20010816" not in raw and b"7264" not in raw
    uids = [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
            str(ds.file_meta.MediaStorageSOPInstanceUID), str(ds.FrameOfReferenceUID)]
    assert all(re.fullmatch(r"1\.2\.826\.0\.1\.3680043\.8\.498\.\d+", uid) for uid in uids)  # pydicom's root
    assert "no identifiers" in str(ds.get("StudyDescription", "")).lower()
    assert "TCGA-LGG" in str(ds.get("ImageComments", ""))  # the collection its pixels come from, not the case


def test_dicom_uids_come_from_fixed_strings_and_the_output_name_only() -> None:
    """Not from the source: the script's UIDs are generate_uid of its salt and the output file's name."""
    import importlib.util

    from pydicom.uid import generate_uid

    spec = importlib.util.spec_from_file_location(
        "make_sample_images", Path(__file__).resolve().parents[1] / "scripts" / "make_sample_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pydicom = pytest.importorskip("pydicom")
    for path in DICOM_FILES:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert str(ds.SOPInstanceUID) == generate_uid(entropy_srcs=[module.UID_SALT, path.stem, "instance"])
        assert str(ds.SeriesInstanceUID) == generate_uid(entropy_srcs=[module.UID_SALT, path.stem, "series"])
        assert str(ds.StudyInstanceUID) == generate_uid(entropy_srcs=[module.UID_SALT, "study"])


def test_what_the_app_shows_of_a_sample_holds_no_code_or_date() -> None:
    for path in DICOM_FILES:
        scan = load_scan(path.read_bytes(), path.name)
        shown = str(scan.metadata) + " ".join(scan.notes)
        assert "TCGA" not in shown and "Anonymous" not in shown and not re.search(r"(19|20)\d\d[01]\d[0-3]\d", shown)
        assert scan.metadata["modality"] == "MR" and scan.metadata["body_part"] == "BRAIN"


def test_generator_reproduces_the_shipped_files() -> None:
    """The script still produces what is checked in (needs the shared data sets beside the repository)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_sample_images", Path(__file__).resolve().parents[1] / "scripts" / "make_sample_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = Path("/work/shared/data") if not module.DEFAULT_DATA.is_dir() else module.DEFAULT_DATA
    if not (data / "lgg-tcga-slices").is_dir():
        pytest.skip("the shared data sets are not beside the repository")
    built = module.build(data)
    assert set(built) == {p.name for p in SAMPLE_FILES}
    for name, data in built.items():
        shipped_bytes = (SAMPLES / name).read_bytes()
        n_frames = load_scan(shipped_bytes, name).n_frames
        assert load_scan(data, name).n_frames == n_frames, name
        for frame in range(n_frames):
            ours, shipped = load_scan(data, name, frame).pixels, load_scan(shipped_bytes, name, frame).pixels
            assert float(np.abs(ours - shipped).max()) <= 2 / 255, f"{name} frame {frame}"
