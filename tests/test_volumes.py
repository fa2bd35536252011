"""Whole studies in (issue 20): NIfTI volumes and DICOM series read into one frame, shown in one convention, placed
in world millimetres, and refused in one sentence where they cannot be used. Tiny inputs, no model."""

from __future__ import annotations

import gzip
import io
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from brainscan.errors import ScanError
from brainscan.scans import volume as vol
from brainscan.scans.nifti import MultiVolumeError, read_nifti
from brainscan.scans.studies import sort_files
from brainscan.scans.synthetic import dicom_series, nifti_bytes

ROOT = Path(__file__).resolve().parent.parent
N, S = 20, 40  # slices, in-plane side of the test volumes (1 mm voxels)
ANTERIOR = (10, 5, 20)  # (slice, row, col) in display order: near the front, on the midline
RIGHT = (10, 20, 5)  # on the patient's right (the image's left), half-way front to back


def display_volume() -> np.ndarray:
    """uint16 [slice, row, col] in brainscan's display order: a dim box of head with two bright markers."""
    d = np.zeros((N, S, S), np.uint16)
    d[:, 3:-3, 3:-3] = 200
    for k, r, c in (ANTERIOR, RIGHT):
        d[k - 1:k + 2, r - 1:r + 2, c - 1:c + 2] = 1000
    return d


def ras_volume(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The display volume as voxels [x, y, z] running toward R, A, S, with its affine (1 mm, origin at the centre)."""
    v = np.ascontiguousarray(d.transpose(2, 1, 0)[::-1, ::-1, :])
    aff = np.eye(4)
    aff[:3, 3] = -(np.array(v.shape) - 1) / 2
    return v, aff


def stored(d: np.ndarray, codes: str) -> tuple[np.ndarray, np.ndarray]:
    """The same head stored with voxel axes toward ``codes`` (e.g. 'LPS', 'PIR'), with its voxel-to-RAS affine."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

    v, aff = ras_volume(d)
    t = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(tuple(codes)))
    return np.ascontiguousarray(apply_orientation(v, t)), aff @ inv_ornt_aff(t, v.shape)


def marker_at(img: np.ndarray) -> tuple[int, int]:
    """(row, col) of the brightest 3x3 block."""
    import cv2

    blurred = cv2.blur(img.astype(np.float32), (3, 3))
    r, c = np.unravel_index(int(np.argmax(blurred)), blurred.shape)
    return int(r), int(c)


def assert_shown_in_convention(v: vol.Volume) -> None:
    """Anterior at the top, the patient's right on the image's left, on the axial slice through the markers."""
    from dataclasses import replace

    v = replace(v, window=(0.0, 1000.0))  # the markers white, the head grey
    k = int(np.argmax([(v.slice_pixels(i) > 0.9).sum() for i in range(v.n_slices)]))
    img = v.slice_pixels(k)
    h, w = img.shape
    top = img[: h // 3, w // 3: 2 * w // 3]
    left = img[h // 3: 2 * h // 3, : w // 3]
    assert top.max() > 0.9, "the anterior marker is not at the top"
    assert left.max() > 0.9, "the right marker is not on the left"
    assert img[2 * h // 3:, :].max() < 0.5 and img[:, 2 * w // 3:].max() < 0.5


# --- NIfTI ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("codes", ["RAS", "LPS", "LAS", "RPI", "PIR", "ASL", "SRA", "ILP"])
def test_a_nifti_in_any_voxel_order_is_shown_anterior_up_and_radiological(codes):
    data, aff = stored(display_volume(), codes)
    v = read_nifti(nifti_bytes(data, aff), f"{codes}.nii.gz")
    assert v.metadata["voxel_order"] == codes
    assert v.data.shape == (N, S, S)
    assert_shown_in_convention(v)
    if codes[2] not in "SI":
        assert any("resliced to axial" in n for n in v.notes)


@pytest.mark.parametrize("gz,version", [(True, 1), (False, 1), (True, 2), (False, 2)])
def test_nifti_1_and_2_plain_and_gzip_read_alike(gz, version):
    data, aff = stored(display_volume(), "LPS")
    v = read_nifti(nifti_bytes(data, aff, gz=gz, version=version), "x.nii.gz" if gz else "x.nii")
    assert v.metadata["format"].startswith(f"NIfTI-{version}")
    np.testing.assert_array_equal(np.asarray(v.data), display_volume())


def test_a_scaling_slope_changes_the_values_not_the_picture():
    data, aff = stored(display_volume(), "RAS")
    plain = read_nifti(nifti_bytes(data, aff), "a.nii.gz")
    scaled = read_nifti(nifti_bytes(data, aff, slope=2.5, inter=-10), "b.nii.gz")
    assert scaled.metadata["scaling"] == [2.5, -10.0]
    assert any("scl_slope" in n for n in scaled.notes)
    for k in range(N):
        np.testing.assert_allclose(plain.slice_pixels(k), scaled.slice_pixels(k), atol=1e-6)
    inverted = read_nifti(nifti_bytes(data, aff, slope=-1.0), "c.nii.gz")
    np.testing.assert_allclose(inverted.slice_pixels(6), 1 - plain.slice_pixels(6), atol=1e-6)  # values negated


def test_an_oblique_volume_is_shown_along_its_nearest_axes_and_says_so():
    data, aff = stored(display_volume(), "LPS")
    t = np.radians(15)
    rot = np.array([[1, 0, 0, 0], [0, np.cos(t), -np.sin(t), 0], [0, np.sin(t), np.cos(t), 0], [0, 0, 0, 1]])
    v = read_nifti(nifti_bytes(data, rot @ aff), "oblique.nii.gz")
    assert any("oblique (15 degrees" in n for n in v.notes)
    assert_shown_in_convention(v)


def test_thick_sagittal_slices_are_resliced_to_axial_with_square_pixels():
    d = display_volume()
    data, aff = stored(d, "PIR")
    aff = aff @ np.diag([1.0, 1.0, 2.0, 1.0])  # 2 mm between the sagittal slices: the axial slice's columns
    v = read_nifti(nifti_bytes(data[:, :, ::1], aff), "sag.nii.gz")
    assert v.spacing == pytest.approx((2.0, 1.0, 1.0))
    assert v.display_shape == (S, 2 * S)
    assert v.slice_pixels(0).shape == (S, 2 * S)


@pytest.mark.parametrize("codes", ["RAS", "LPS", "PIR"])
def test_a_blob_at_known_ras_millimetres_is_found_there_within_a_voxel(codes):
    """World coordinates: a blob placed at (x, y, z) RAS mm in an oblique, scaled file is reported there."""
    target = np.array([7.0, -9.0, 3.0])
    data, aff = stored(np.zeros((N, S, S), np.uint16), codes)
    aff = aff @ np.diag([1.0, 1.2, 0.8, 1.0])
    t = np.radians(10)
    aff = np.array([[np.cos(t), 0, np.sin(t), 2], [0, 1, 0, -3], [-np.sin(t), 0, np.cos(t), 1], [0, 0, 0, 1]]) @ aff
    ijk = np.rint(np.linalg.solve(aff, [*target, 1])[:3]).astype(int)
    data[tuple(ijk)] = 1000
    exact = (aff @ [*ijk, 1])[:3]  # the voxel's centre
    v = read_nifti(nifti_bytes(data, aff), "blob.nii.gz")
    k = int(np.argmax(np.asarray(v.data).reshape(v.n_slices, -1).max(axis=1)))
    img = v.slice_pixels(k)
    y, x = np.unravel_index(int(np.argmax(img)), img.shape)
    found = np.array(v.display_world(x, y, k))
    assert np.linalg.norm(found - exact) <= np.linalg.norm(v.spacing) / 2 + 1e-6
    assert np.linalg.norm(found - target) <= np.linalg.norm(v.spacing)


# --- DICOM series ---------------------------------------------------------------------------------------------

LPS_OF = {"R": (-1, 0, 0), "L": (1, 0, 0), "A": (0, -1, 0), "P": (0, 1, 0), "I": (0, 0, -1), "S": (0, 0, 1)}


def series_of(d: np.ndarray, codes: str, **kw) -> list[tuple[str, bytes]]:
    """The head as a DICOM series whose rows run toward codes[0], columns toward codes[1], slices toward codes[2]."""
    data, aff = stored(d, codes)  # [c, r, k]
    first_ras = (aff @ [0, 0, 0, 1])[:3]
    frames = np.ascontiguousarray(data.transpose(2, 1, 0))  # [k, r, c]
    orientation = [*LPS_OF[codes[0]], *LPS_OF[codes[1]]]
    assert np.allclose(np.cross(LPS_OF[codes[0]], LPS_OF[codes[1]]), LPS_OF[codes[2]]), "not a DICOM frame"
    return dicom_series(frames, orientation=orientation, first=(-first_ras[0], -first_ras[1], first_ras[2]), **kw)


@pytest.mark.parametrize("codes", ["LPS", "RAS", "LAI", "PIR", "ASR", "LIP", "RSP"])
def test_a_dicom_series_in_any_orientation_is_shown_anterior_up_and_radiological(codes):
    files = series_of(display_volume(), codes)
    random.Random(3).shuffle(files)  # the order the files arrive in does not matter
    studies = sort_files(files)
    assert [s.kind for s in studies] == ["dicom series"]
    v = studies[0].load()
    assert v.data.shape == (N, S, S)
    np.testing.assert_array_equal(np.asarray(v.data), display_volume())
    assert_shown_in_convention(v)


def test_an_oblique_dicom_series_and_an_enhanced_multiframe_file():
    d = display_volume()
    t = np.radians(20)
    row, col = (np.cos(t), np.sin(t), 0.0), (-np.sin(t), np.cos(t), 0.0)
    files = dicom_series(d, orientation=(*row, *col), first=(-20, -20, -6), spacing=(1.0, 1.0), step=1.0)
    v = sort_files(files)[0].load()
    assert any("oblique (20 degrees" in n for n in v.notes)
    enhanced = dicom_series(d, first=(-20, -20, -6), enhanced=True)
    assert len(enhanced) == 1
    e = sort_files(enhanced)[0].load()
    np.testing.assert_array_equal(np.asarray(e.data), d)
    assert e.world(0, 0, 0) == pytest.approx((20.0, 20.0, -6.0))  # LPS (-20, -20, -6) in RAS


def test_a_dicom_blob_is_placed_in_ras_millimetres():
    d = np.zeros((N, S, S), np.uint16)
    d[4, 10, 30] = 1000  # slice 4, row 10, column 30
    v = sort_files(dicom_series(d, first=(-15.0, -12.0, 40.0), spacing=(0.5, 0.8), step=2.0))[0].load()
    k, r, c = np.unravel_index(int(np.argmax(v.data)), v.data.shape)
    # LPS = first + c * 0.8 along x + r * 0.5 along y + k * 2 along z; RAS flips x and y
    assert v.world(c, r, k) == pytest.approx((15.0 - 30 * 0.8, 12.0 - 10 * 0.5, 40.0 + 4 * 2.0))
    img = v.slice_pixels(k)
    y, x = np.unravel_index(int(np.argmax(img)), img.shape)
    assert np.linalg.norm(np.array(v.display_world(x, y, k)) - v.world(c, r, k)) <= 0.8


def test_series_without_positions_fall_back_to_instance_numbers_with_a_note():
    d = display_volume()
    files = dicom_series(d, instances=list(range(N, 0, -1)))
    stripped = []
    for name, data in files:
        import pydicom

        ds = pydicom.dcmread(io.BytesIO(data))
        del ds.ImagePositionPatient
        buf = io.BytesIO()
        ds.save_as(buf)
        stripped.append((name, buf.getvalue()))
    v = sort_files(stripped)[0].load()
    assert any("instance number" in n for n in v.notes)
    np.testing.assert_array_equal(np.asarray(v.data), d[::-1])  # instance numbers ran superior to inferior


# --- bad input: one sentence each --------------------------------------------------------------------------------

def one_sentence(err: Exception) -> str:
    text = str(err)
    assert text and "\n" not in text and "Traceback" not in text and text.endswith("."), text
    return text


def test_a_truncated_nii_gz_is_refused():
    data, aff = stored(np.random.default_rng(0).integers(0, 999, (N, S, S)).astype(np.uint16), "RAS")
    gz = nifti_bytes(data, aff)
    with pytest.raises(ScanError) as err:
        read_nifti(gz[: len(gz) * 2 // 3], "cut.nii.gz")
    assert "truncated" in one_sentence(err.value)
    with pytest.raises(ScanError) as err:
        read_nifti(nifti_bytes(data, aff, gz=False)[:-100], "cut.nii")
    assert "truncated" in one_sentence(err.value)


def test_a_singular_affine_is_refused():
    data, _ = stored(display_volume(), "RAS")
    aff = np.eye(4)
    aff[:3, 2] = aff[:3, 1]  # two axes point the same way
    with pytest.raises(ScanError) as err:
        read_nifti(nifti_bytes(data, aff), "flat.nii.gz")
    assert "singular" in one_sentence(err.value)


def test_4d_data_needs_a_chosen_volume():
    data, aff = stored(display_volume(), "RAS")
    four = np.stack([data, data // 2, data // 4], axis=-1)
    raw = nifti_bytes(four, aff)
    with pytest.raises(MultiVolumeError) as err:
        read_nifti(raw, "dwi.nii.gz")
    assert err.value.count == 3 and "3 volumes" in one_sentence(err.value)
    second = read_nifti(raw, "dwi.nii.gz", volume=1)
    np.testing.assert_array_equal(np.asarray(second.data), display_volume() // 2)
    with pytest.raises(ScanError):
        read_nifti(raw, "dwi.nii.gz", volume=3)


def test_a_header_claiming_a_trillion_voxels_is_refused_before_decoding():
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((10000, 10000, 10000))
    hdr.set_data_dtype(np.int16)
    raw = hdr.binaryblock + b"\x00" * 4 + b"\x00" * 1024  # a header and almost nothing else
    for data in (raw, gzip.compress(raw)):
        with pytest.raises(ScanError) as err:
            read_nifti(data, "huge.nii.gz")
        assert "1,000,000,000,000 voxels" in one_sentence(err.value)


def test_a_series_with_one_slice_missing_is_read_with_the_gap_blank_and_said():
    files = dicom_series(display_volume(), step=3.0)
    del files[4]
    v = sort_files(files)[0].load()
    assert v.n_slices == N and v.missing == {4}
    assert not np.asarray(v.data[4]).any()
    assert any("1 slice(s) missing" in n for n in v.notes)
    keep, outside = vol.head_slices(v)
    assert 4 not in keep and 4 not in outside


def test_duplicate_positions_and_uneven_spacing_are_said():
    d = display_volume()
    files = dicom_series(d)
    files.append(("copy.dcm", files[3][1]))
    v = sort_files(files)[0].load()
    assert any("duplicate positions" in n for n in v.notes)
    z = [0, 1, 2, 3.4, 4, 5, 6, 7, 8, 9.6] + list(range(10, 20))
    uneven = dicom_series(d, positions=[[0.0, 0.0, float(p)] for p in z])
    v = sort_files(uneven)[0].load()
    assert any("uneven" in n for n in v.notes)
    echoes = dicom_series(d[:6]) + dicom_series(d[:6] // 2, name="E2_", series="1.2.826.0.1.3680043.8.498.1")
    with pytest.raises(ScanError) as err:
        sort_files(echoes)[0].load()
    assert "2 images at each of its 6 positions" in one_sentence(err.value)


def test_two_series_in_one_zip_give_two_volumes():
    d = display_volume()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in dicom_series(d, series="1.2.3.1", name="A"):
            z.writestr(f"study/A/{name}", data)
        for name, data in dicom_series(d[:8], series="1.2.3.2", name="B"):
            z.writestr(f"study/B/{name}", data)
    studies = sort_files([("study.zip", buf.getvalue())])
    assert [s.kind for s in studies] == ["dicom series", "dicom series"]
    assert [s.name for s in studies] == ["study.zip (DICOM series 1 of 2, 20 files)",
                                        "study.zip (DICOM series 2 of 2, 8 files)"]
    assert [s.load().n_slices for s in studies] == [20, 8]


def test_mixed_orientations_are_refused():
    d = display_volume()
    axial = dicom_series(d[:6])
    sagittal = series_of(d, "PIR")[:6]
    with pytest.raises(ScanError) as err:
        sort_files(axial + sagittal)[0].load()
    assert "mixes slice orientations (axial and sagittal)" in one_sentence(err.value)


def test_ten_thousand_dicom_files_are_refused_without_reading_them():
    fake = b"\x00" * 128 + b"DICM" + b"\x00" * 64
    studies = sort_files([(f"IM{i:05d}", fake) for i in range(10_000)])
    assert [s.kind for s in studies] == ["refused"]
    assert "10,000 DICOM files" in one_sentence(ScanError(studies[0].error))


def test_other_files_stay_single_files_and_keep_their_order():
    png = (ROOT / "sample_images" / "lgg_glioma_flair.png").read_bytes()
    data, aff = stored(display_volume(), "RAS")
    studies = sort_files([("a.png", png), ("head.nii.gz", nifti_bytes(data, aff)), *dicom_series(display_volume()),
                          ("b.png", png)])
    assert [(s.name, s.kind) for s in studies] == [
        ("a.png", "file"), ("head.nii.gz", "nifti"),
        ("IM0001.dcm and 19 more (DICOM series, 20 files)", "dicom series"), ("b.png", "file")]
    single = sort_files([(p.name, p.read_bytes()) for p in sorted((ROOT / "sample_images").glob("*.dcm"))])
    assert {s.kind for s in single} == {"file"}  # lone slices are checked as today


def test_reading_volumes_never_imports_tensorflow(tmp_path):
    data, aff = stored(display_volume(), "LPS")
    (tmp_path / "v.nii.gz").write_bytes(nifti_bytes(data, aff))
    series = tmp_path / "series"
    series.mkdir()
    for name, blob in dicom_series(display_volume()):
        (series / name).write_bytes(blob)
    code = ("import sys; from brainscan.scans.studies import studies_from_paths; "
            "from brainscan.runtime import volume; import brainscan.volume_check; "
            f"vs = [s.load() for s in studies_from_paths([{str(tmp_path / 'v.nii.gz')!r}, {str(series)!r}])]; "
            "assert [v.n_slices for v in vs] == [20, 20], vs; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
