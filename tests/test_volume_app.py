"""The Scan page with volumes (issue 20), through streamlit.testing: one row per volume, the volume view (answer,
strip and slider, three views, volume report) and any slice checked like a single scan."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from test_app import heatmap_image, png, scan_page, texts, upload

from brainscan.scans.synthetic import dicom_series, nifti_bytes, phantom_volume


@pytest.fixture
def model_env(monkeypatch, tiny_model):
    monkeypatch.setenv("BRAINSCAN_MODEL", tiny_model)
    return tiny_model


def head_nifti() -> bytes:
    d = phantom_volume(14, 96, lesion=(7, 30, 60), seed=5)
    return nifti_bytes(np.ascontiguousarray(d.transpose(2, 1, 0)[::-1, ::-1, :]), np.diag([1.0, 1.0, 3.0, 1.0]))


def series() -> list[tuple[str, bytes]]:
    return dicom_series(phantom_volume(12, 96, lesion=(5, 50, 30), seed=6), step=3.0)


def test_volumes_and_images_give_one_row_each_and_a_volume_view(model_env):
    at = upload(scan_page(), ("a.png", png(seed=1)), ("head.nii.gz", head_nifti()), *series())
    assert not at.exception
    df = at.dataframe[0].value
    assert df["File"].tolist() == ["a.png", "head.nii.gz: volume of 14 slices",
                                   "IM0001.dcm and 11 more (DICOM series, 12 files): volume of 12 slices"]
    assert df["Problem"].tolist() == ["", "", ""]
    pick = at.selectbox(key="detail_file")
    assert pick.options == ["1. a.png", "2. head.nii.gz", "3. IM0001.dcm and 11 more (DICOM series, 12 files)"]
    pick.set_value("2. head.nii.gz").run()
    assert not at.exception
    page = texts(at)
    assert "Result for head.nii.gz" in page and "The model's answer: " in page
    assert "14 axial slices: " in page and "Volume rule: " in page
    captions = [c for im in at.image for c in im.captions]
    assert any(c.startswith("Red: at or above the slice threshold") for c in captions)
    views = [c for c in captions if c.startswith(("Axial, slice", "Coronal,", "Sagittal,"))]
    assert [c.split(",")[0] for c in views] == ["Axial", "Coronal", "Sagittal"]
    slider = at.slider(key=[k for k in (s.key for s in at.slider) if k.startswith("vslice-")][0])
    peak = slider.value
    assert f"Slice {peak}: everything a single scan gets" in page
    heatmap_image(at)  # the chosen slice's own heatmap, as for a single scan
    other = (peak + 3) % 14
    slider.set_value(other).run()
    assert not at.exception
    assert f"Slice {other}: everything a single scan gets" in texts(at)
    assert len([im for im in at.image if im.captions[0][:2] in {f"{i}." for i in range(1, 7)}]) == 6  # steps
    assert "Download the volume report (PDF)" in [b.label for b in at.download_button]
    pdf = at.session_state["_volume_report_pdf"]()
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "The volume: head.nii.gz" in text and "14 axial slices" in text and "peak slice" in text.lower()


def test_a_zip_with_a_series_and_a_bad_volume(model_env):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in series():
            z.writestr(f"s/{name}", data)
        z.writestr("s/extra.png", png(seed=3))
    whole = head_nifti()
    at = upload(scan_page(), ("study.zip", buf.getvalue()), ("cut.nii.gz", whole[: len(whole) // 2]))
    assert not at.exception
    df = at.dataframe[0].value
    assert df["File"].tolist() == ["study.zip (DICOM series, 12 files): volume of 12 slices", "extra.png",
                                   "cut.nii.gz"]
    assert df["Problem"].tolist()[:2] == ["", ""]  # the image inside the zip is checked as a single image
    assert "truncated" in df["Problem"].tolist()[2]
    assert any("truncated" in e.value for e in at.error)
    assert "Result for study.zip (DICOM series, 12 files)" in texts(at)


def test_a_4d_file_gets_a_volume_picker(model_env):
    d = phantom_volume(14, 96, lesion=(7, 30, 60), seed=5)
    ras = np.ascontiguousarray(d.transpose(2, 1, 0)[::-1, ::-1, :])
    four = nifti_bytes(np.stack([ras, ras // 2, np.zeros_like(ras)], axis=-1), np.diag([1.0, 1.0, 3.0, 1.0]))
    at = upload(scan_page(), ("dwi.nii.gz", four))
    assert not at.exception
    picker = next(n for n in at.number_input if n.key.startswith("vol4d-"))
    assert "3 volumes" in picker.label and picker.value == 0
    assert "Volume 0 of the 3 in this 4-D file." in texts(at)
    picker.set_value(2).run()
    assert not at.exception
    assert "none of its 14 slices holds enough of a head" in texts(at)  # the third volume is empty: said
    picker = next(n for n in at.number_input if n.key.startswith("vol4d-"))  # and the picker stays
    picker.set_value(1).run()
    assert not at.exception
    assert "Volume 1 of the 3 in this 4-D file." in texts(at)
