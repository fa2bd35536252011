"""The sample volumes (sample_images/volumes/): documented, reproducible, free of identifiers, and answered as their
truth says by the shipped model."""

from __future__ import annotations

import importlib.util
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from brainscan.scans.studies import sort_files

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "sample_images" / "volumes"
DATA = ROOT.parent / "shared" / "data"
NIFTI, SERIES = FOLDER / "ms_flair_volume.nii.gz", FOLDER / "lgg_glioma_flair_series.zip"


def test_both_are_documented_small_and_load_as_volumes():
    readme = (ROOT / "sample_images" / "README.md").read_text()
    for path in (NIFTI, SERIES):
        assert f"`volumes/{path.name}`" in readme
        assert path.stat().st_size < 600 * 1024
    ms = sort_files([(NIFTI.name, NIFTI.read_bytes())])[0].load()
    assert ms.n_slices == 36 and ms.metadata["voxel_order"] == "LPS"
    lgg = sort_files([(SERIES.name, SERIES.read_bytes())])
    assert [s.name for s in lgg] == ["lgg_glioma_flair_series.zip (DICOM series, 16 files)"]
    v = lgg[0].load()
    assert v.n_slices == 25 and len(v.missing) == 9


def test_the_series_headers_hold_no_identifier():
    with zipfile.ZipFile(SERIES) as z:
        for name in z.namelist():
            blob = z.read(name)
            assert b"TCGA" not in blob.split(b"Pixels: ")[0] and b"7684" not in blob and b"1995" not in blob
            import pydicom

            ds = pydicom.dcmread(BytesIO(blob))
            assert str(ds.PatientName) == "Anonymous^Sample" and ds.PatientID == "" and ds.StudyDate == ""


@pytest.mark.skipif(not DATA.is_dir(), reason="the shared data folder is not here")
def test_the_script_reproduces_them():
    spec = importlib.util.spec_from_file_location("make_sample_volumes", ROOT / "scripts" / "make_sample_volumes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build(DATA)
    assert built == {NIFTI.name: NIFTI.read_bytes(), SERIES.name: SERIES.read_bytes()}


def test_the_shipped_model_answers_them_as_their_truth_says():
    from brainscan.check import load_checker
    from brainscan.volume_check import check_volume

    model = load_checker(str(ROOT / "models" / "default"))
    ms = check_volume(model, sort_files([(NIFTI.name, NIFTI.read_bytes())])[0].load(), None)
    assert ms.prediction.label == "notumor"
    lgg = check_volume(model, sort_files([(SERIES.name, SERIES.read_bytes())])[0].load(), "gradcam", tta=False)
    assert lgg.prediction.label == "glioma"
    assert 12 <= lgg.answer.peak_slice <= 21  # the outlined tumour's slices (from lgg-tcga-slices' masks)
