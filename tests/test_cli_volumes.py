"""`python -m brainscan predict` and `convert` on volumes (issue 20), through real subprocesses: one JSON line per
volume, per-slice lines with --slices, one sentence per unusable input and no traceback."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_cli import brainscan

from brainscan.scans.synthetic import dicom_series, nifti_bytes, phantom_volume


def volume_files(tmp_path: Path) -> dict[str, Path]:
    """A NIfTI file, a folder holding a DICOM series (and one PNG), a zip of two series, and bad inputs."""
    d = phantom_volume(16, 64, lesion=(8, 20, 40), seed=4)
    ras = np.ascontiguousarray(d.transpose(2, 1, 0)[::-1, ::-1, :])
    aff = np.diag([1.5, 1.5, 3.0, 1.0])
    out = {"nifti": tmp_path / "head.nii.gz"}
    out["nifti"].write_bytes(nifti_bytes(ras, aff))
    folder = tmp_path / "series"
    folder.mkdir()
    for name, data in dicom_series(d, step=3.0, spacing=(1.5, 1.5)):
        (folder / name).write_bytes(data)
    out["folder"] = folder
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in dicom_series(d, series="1.2.3.1", name="A"):
            z.writestr(f"A/{name}", data)
        for name, data in dicom_series(d[:6], series="1.2.3.2", name="B"):
            z.writestr(f"B/{name}", data)
    out["zip"] = tmp_path / "study.zip"
    out["zip"].write_bytes(buf.getvalue())
    whole = out["nifti"].read_bytes()
    out["truncated"] = tmp_path / "cut.nii.gz"
    out["truncated"].write_bytes(whole[: len(whole) // 2])
    four = tmp_path / "dwi.nii.gz"
    four.write_bytes(nifti_bytes(np.stack([ras, ras], -1), aff))
    out["4d"] = four
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((10000, 10000, 10000))
    out["huge"] = tmp_path / "huge.nii.gz"
    out["huge"].write_bytes(gzip.compress(hdr.binaryblock + b"\x00" * 100))
    return out


def lines(r) -> list[dict]:
    assert "Traceback" not in r.stderr, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.slow
def test_predict_gives_one_line_per_volume(tiny_model, tmp_path):
    f = volume_files(tmp_path)
    r = brainscan("predict", str(f["nifti"]), str(f["folder"]), str(f["zip"]), "--cam", model=tiny_model)
    assert r.returncode == 0, r.stderr
    out = lines(r)
    assert [o["file"] for o in out] == ["head.nii.gz", "series (DICOM series, 16 files)",
                                        "study.zip (DICOM series 1 of 2, 16 files)",
                                        "study.zip (DICOM series 2 of 2, 6 files)"]
    for o in out:
        assert o["kind"] == "volume" and o["label"] in o["probabilities"]
        assert len(o["slice_tumor_probability"]) == o["slices"] and 0 <= o["peak_slice"] < o["slices"]
        assert 0 <= o["tumor_probability"] <= 1
        assert len(o["cam_peak_ras_mm"]) == 3
    assert out[0]["slices"] == 16 and out[3]["slices"] == 6
    # the same head as a NIfTI file and as a series: the same slices, the same answers
    assert out[0]["slice_tumor_probability"] == pytest.approx(out[2]["slice_tumor_probability"], abs=1e-3)


@pytest.mark.slow
def test_predict_slices_keeps_one_line_per_slice(tiny_model, tmp_path):
    f = volume_files(tmp_path)
    r = brainscan("predict", "--slices", str(f["nifti"]), str(f["folder"]), model=tiny_model)
    out = lines(r)
    assert r.returncode == 0, r.stderr
    nifti = [o for o in out if o["file"] == "head.nii.gz"]
    assert [o["slice"] for o in nifti] == list(range(16))
    files = [o["file"] for o in out if o["file"] != "head.nii.gz"]
    assert files == [str(f["folder"] / f"IM{k:04d}.dcm") for k in range(1, 17)]  # the paths, as before
    assert all("kind" not in o for o in out)


@pytest.mark.slow
def test_bad_volumes_get_one_sentence_each_and_the_others_still_run(tiny_model, tmp_path):
    f = volume_files(tmp_path)
    r = brainscan("predict", str(f["truncated"]), str(f["4d"]), str(f["huge"]), str(f["nifti"]), model=tiny_model)
    assert r.returncode == 1
    out = lines(r)
    assert [o["file"] for o in out] == ["cut.nii.gz", "dwi.nii.gz", "huge.nii.gz", "head.nii.gz"]
    for o in out[:3]:
        assert o["error"].endswith(".") and "\n" not in o["error"]
    assert "truncated" in out[0]["error"] and "2 volumes" in out[1]["error"] and "voxels" in out[2]["error"]
    assert "error" not in out[3]
    r = brainscan("predict", "--volume", "1", str(f["4d"]), model=tiny_model)
    assert r.returncode == 0 and lines(r)[0]["kind"] == "volume"


def test_convert_writes_a_volume_as_axial_slices(tmp_path):
    f = volume_files(tmp_path)
    out = tmp_path / "png"
    r = brainscan("convert", str(f["nifti"]), str(f["folder"]), "--out", str(out))
    assert r.returncode == 0, r.stderr
    res = lines(r)
    volumes = [x for x in res if x.get("kind") == "volume"]
    assert [v["slices"] for v in volumes] == [16, 16]
    assert sorted(p.name for p in out.glob("head_slice_*.png")) == [f"head_slice_{k:03d}.png" for k in range(16)]
    assert len(list(out.glob("series_slice_*.png"))) == 16
