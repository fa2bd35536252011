"""DICOM loading: windowing maths, frames, refusals, bundled codecs, privacy."""

from __future__ import annotations

import logging
import warnings
from io import BytesIO

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate

from brainscan.scans.dicom import SAFE_TAGS, read_dicom, ts_name
from brainscan.scans.io import ScanError, is_dicom, load_scan

SECRETS = ("Doe", "Jane", "DOE-4711", "19800101")


def gradient(h: int = 16, w: int = 16, dtype: type = np.uint16) -> np.ndarray:
    return np.arange(h * w, dtype=dtype).reshape(h, w)


def bundled(name: str) -> bytes:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    with open(path, "rb") as fh:
        return fh.read()


def unsupported_syntax(uid: str) -> bytes:
    """MR_small re-encoded as encapsulated junk under transfer syntax ``uid`` (23 chars).

    pydicom refuses to write UIDs it does not know, so write HTJ2K Lossless
    (also 23 characters) and patch the UID bytes in place.
    """
    import pydicom

    assert len(uid) == 23
    ds = pydicom.dcmread(BytesIO(bundled("MR_small.dcm")))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"
    ds.PatientName = "Doe^Jane"
    ds.PixelData = encapsulate([b"\x00" * 100])
    ds["PixelData"].VR = "OB"
    buf = BytesIO()
    ds.save_as(buf)
    data = buf.getvalue()
    assert data.count(b"1.2.840.10008.1.2.4.201\x00") == 1
    return data.replace(b"1.2.840.10008.1.2.4.201\x00", uid.encode() + b"\x00")


# --- windowing maths (hand-computed) ---------------------------------------------------


def test_rescale_then_linear_window(make_dicom):
    # x = 2*s - 100; LINEAR with c=100.5, w=201: y = (x - 100)/200 + 0.5, clipped.
    arr = np.zeros((16, 16), np.uint16)
    arr[0, :5] = [75, 100, 125, 0, 200]  # x = 50, 100, 150, -100, 300
    data = make_dicom(arr, RescaleSlope=2, RescaleIntercept=-100, WindowCenter=100.5, WindowWidth=201)
    scan = load_scan(data, "a.dcm")
    np.testing.assert_allclose(scan.pixels[0, :5], [0.25, 0.5, 0.75, 0.0, 1.0], atol=1e-6)
    assert scan.kind == "dicom"
    assert scan.metadata["window"].startswith("center 100.5, width 201")


def test_multi_valued_window_uses_first(make_dicom):
    arr = np.zeros((16, 16), np.uint16)
    arr[0, :3] = [75, 100, 125]
    data = make_dicom(
        arr, RescaleSlope=2, RescaleIntercept=-100, WindowCenter=[100.5, 3000], WindowWidth=[201, 10]
    )
    scan = load_scan(data)
    np.testing.assert_allclose(scan.pixels[0, :3], [0.25, 0.5, 0.75], atol=1e-6)
    assert "first of 2" in scan.metadata["window"]


def test_linear_exact_and_sigmoid(make_dicom):
    arr = np.zeros((16, 16), np.uint16)
    arr[0, :3] = [0, 25, 100]
    exact = load_scan(make_dicom(arr, WindowCenter=50, WindowWidth=100, VOILUTFunction="LINEAR_EXACT"))
    np.testing.assert_allclose(exact.pixels[0, :3], [0.0, 0.25, 1.0], atol=1e-6)
    sig = load_scan(make_dicom(arr, WindowCenter=25, WindowWidth=100, VOILUTFunction="SIGMOID"))
    # 1 / (1 + exp(-4 (x - c) / w)): x=c -> 0.5; x=0 -> 1/(1+e) = 0.268941...
    np.testing.assert_allclose(sig.pixels[0, :2], [1 / (1 + np.e), 0.5], atol=1e-6)


def voi_item(descriptor: list[int], data: list[int], vr: str = "US") -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", descriptor)  # LUTDescriptor: entries, first mapped value, bits
    value = np.asarray(data, "<u2").tobytes() if vr == "OW" else data
    item.add_new(0x00283006, vr, value)  # LUTData
    return item


@pytest.mark.parametrize("vr", ["US", "OW"])
def test_voi_lut_sequence(make_dicom, vr):
    item = voi_item([256, 0, 8], list(range(255, -1, -1)), vr)  # inverted ramp
    arr = np.zeros((16, 16), np.uint16)
    arr[0, :3] = [0, 10, 300]  # 300 is past the end -> last entry (0)
    scan = load_scan(make_dicom(arr, VOILUTSequence=[item], WindowCenter=1, WindowWidth=1))
    np.testing.assert_allclose(scan.pixels[0, :3], [1.0, 245 / 255, 0.0], atol=1e-6)
    assert scan.metadata["window"] == "VOI LUT from the file"


def test_voi_lut_8bit_with_many_entries(make_dicom):
    # 512 entries of 8-bit output starting at 100: value v -> (v - 100) // 2
    item = voi_item([512, 100, 8], [i // 2 for i in range(512)])
    arr = np.zeros((16, 16), np.uint16)
    arr[0, :3] = [50, 400, 700]
    scan = load_scan(make_dicom(arr, VOILUTSequence=[item]))
    np.testing.assert_allclose(scan.pixels[0, :3], [0.0, 150 / 255, 255 / 255], atol=1e-6)


def test_monochrome1_inverted_after_window(make_dicom):
    arr = np.zeros((16, 16), np.uint16)
    arr[0, :3] = [0, 25, 100]
    kw = {"WindowCenter": 50, "WindowWidth": 100, "VOILUTFunction": "LINEAR_EXACT"}
    scan = load_scan(make_dicom(arr, PhotometricInterpretation="MONOCHROME1", **kw))
    np.testing.assert_allclose(scan.pixels[0, :3], [1.0, 0.75, 0.0], atol=1e-6)
    assert any("MONOCHROME1" in n for n in scan.notes)
    # Without a window: exactly the inverse of the MONOCHROME2 stretch.
    m1 = load_scan(make_dicom(gradient(), PhotometricInterpretation="MONOCHROME1")).pixels
    m2 = load_scan(make_dicom(gradient())).pixels
    np.testing.assert_allclose(m1, 1.0 - m2, atol=1e-6)


def test_percentile_stretch_without_window(make_dicom):
    scan = load_scan(make_dicom(gradient()))  # values 0..255
    # numpy linear percentiles of 0..255: 0.5% -> 1.275, 99.5% -> 253.725
    lo, hi = 1.275, 253.725
    assert scan.pixels[8, 0] == pytest.approx((128 - lo) / (hi - lo), abs=1e-6)
    assert scan.pixels[0, 0] == 0.0 and scan.pixels[15, 15] == 1.0
    assert "0.5-99.5 percentile stretch" in " ".join(scan.notes)
    assert scan.metadata["window"].startswith("0.5-99.5 percentile stretch")


def test_signed_pixels(make_dicom):
    arr = np.full((16, 16), -1000, np.int16)
    arr[0, 0] = 1000
    scan = load_scan(make_dicom(arr, WindowCenter=0, WindowWidth=2001))
    assert scan.pixels[0, 0] == pytest.approx(1.0) and scan.pixels[1, 1] == pytest.approx(0.0, abs=1e-3)


def test_constant_dicom_loads_with_note(make_dicom):
    scan = load_scan(make_dicom(np.full((16, 16), 7, np.uint16)))
    assert np.all(scan.pixels == 0.0)
    assert any("single" in n for n in scan.notes)


# --- frames ---------------------------------------------------------------------


def frames(n: int) -> np.ndarray:
    return np.stack([np.full((16, 16), 20 * (k + 1), np.uint16) for k in range(n)])


WINDOW = {"WindowCenter": 50, "WindowWidth": 100, "VOILUTFunction": "LINEAR_EXACT"}  # y = x / 100


@pytest.mark.parametrize(("n", "frame", "expected_index"), [(3, None, 1), (4, None, 2), (3, 0, 0), (3, 2, 2)])
def test_frame_selection(make_dicom, n, frame, expected_index):
    scan = load_scan(make_dicom(frames(n), **WINDOW), frame=frame)
    assert (scan.frame, scan.n_frames, scan.metadata["frames"]) == (expected_index, n, n)
    assert scan.pixels[5, 5] == pytest.approx(0.2 * (expected_index + 1))


@pytest.mark.parametrize("frame", [3, -1, 99])
def test_frame_out_of_range(make_dicom, frame):
    with pytest.raises(ScanError, match="3 frame"):
        load_scan(make_dicom(frames(3), **WINDOW), frame=frame)


# --- recognition by content ----------------------------------------------------------


@pytest.mark.parametrize("name", ["scan.dcm", "IM0001", "looks_like.png", ""])
def test_recognised_by_content_not_name(make_dicom, name):
    scan = load_scan(make_dicom(gradient()), name)
    assert scan.kind == "dicom" and scan.name == name


def test_no_preamble_and_no_meta(make_dicom):
    full = make_dicom(gradient())
    no_preamble = make_dicom(gradient(), preamble=False)
    no_meta = make_dicom(gradient(), meta=False)
    assert full[128:132] == b"DICM"
    assert no_preamble[:2] == b"\x02\x00" and b"DICM" not in no_preamble[:200]
    assert no_meta[:2] == b"\x08\x00"
    expected = load_scan(full).pixels
    for data in (no_preamble, no_meta):
        assert is_dicom(data)
        np.testing.assert_array_equal(load_scan(data, "x").pixels, expected)


def test_metadata_is_allow_listed(make_dicom):
    scan = load_scan(make_dicom(gradient(16, 24), PixelSpacing=[0.5, 0.75], BodyPartExamined="HEAD",
                                SliceThickness=3, ImageOrientationPatient=[1, 0, 0, 0, 1, 0]))
    assert set(scan.metadata) == set(SAFE_TAGS) | {"window"}
    assert "series_description" not in scan.metadata  # free text (LO): never copied out
    assert scan.metadata["modality"] == "MR"
    assert scan.metadata["body_part"] == "HEAD"
    assert scan.metadata["orientation"] == "axial"
    assert scan.metadata["pixel_spacing"] == [0.5, 0.75]
    assert scan.metadata["slice_thickness"] == 3.0
    assert (scan.metadata["rows"], scan.metadata["columns"], scan.metadata["frames"]) == (16, 24, 1)
    assert scan.metadata["transfer_syntax"] == "Explicit VR Little Endian"
    assert scan.metadata["bits_stored"] == 16
    assert scan.metadata["photometric_interpretation"] == "MONOCHROME2"


@pytest.mark.parametrize(("elements", "key"), [
    ({"Modality": "DOE 1234"}, "modality"),  # a code string typed by hand: not a defined term
    ({"BodyPartExamined": "JOHN 1970"}, "body_part"),
    ({"BodyPartExamined": "HEAD\\JOHN"}, "body_part"),  # only the first value, and only if it is a term
])
def test_coded_fields_outside_the_defined_terms_are_dropped(make_dicom, elements, key):
    scan = load_scan(make_dicom(gradient(), **elements))
    assert scan.metadata[key] in (None, "HEAD")
    assert "JOHN" not in str(scan.metadata) and "DOE" not in str(scan.metadata)


@pytest.mark.parametrize(("orientation", "expected"), [
    ([1, 0, 0, 0, 1, 0], "axial"), ([0, 1, 0, 0, 0, -1], "sagittal"), ([1, 0, 0, 0, 0, -1], "coronal"),
    ([1, 0, 0, 0, 0.7071, 0.7071], "oblique"), ([1, 0, 0, 1, 0, 0], None), (["x"] * 6, None), ([1, 0], None),
])
def test_plane(orientation, expected):
    from brainscan.scans.dicom import plane

    assert plane(orientation) == expected


# --- refusals -----------------------------------------------------------------------


def test_no_pixel_data(make_dicom):
    data = make_dicom(gradient())
    import pydicom

    ds = pydicom.dcmread(BytesIO(data))
    del ds.PixelData
    buf = BytesIO()
    ds.save_as(buf)
    with pytest.raises(ScanError) as info:
        load_scan(buf.getvalue(), "x.dcm")
    assert str(info.value) == "This DICOM file has no image (no pixel data)."


@pytest.mark.parametrize(
    ("uid", "name"),
    [("1.2.840.10008.1.2.4.110", "JPEG XL"), ("1.3.6.1.4.1.99999.1.2.3", "unknown transfer syntax")],
)
def test_unsupported_transfer_syntax_is_named(uid, name):
    with pytest.raises(ScanError) as info:
        load_scan(unsupported_syntax(uid), "x.dcm")
    msg = str(info.value)
    assert msg.startswith("Cannot decode this DICOM's compression (") and name in msg and uid in msg


def test_broken_codestream_names_syntax():
    # JPEG-lossy.dcm has a known-bad 12-bit JPEG codestream (JPGExtended.dcm is the fixed one).
    with pytest.raises(ScanError, match=r"JPEG Extended \(Process 2 and 4\), 1\.2\.840\.10008\.1\.2\.4\.51"):
        load_scan(bundled("JPEG-lossy.dcm"))


def test_header_too_large_refused_before_decoding(make_dicom, monkeypatch):
    import brainscan.scans.dicom as dcm

    def boom(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(dcm, "pixel_array", boom)
    with pytest.raises(ScanError, match="6000x8000"):
        load_scan(make_dicom(gradient(), Rows=8000, Columns=6000))
    with pytest.raises(ScanError, match="1000 frame"):
        load_scan(make_dicom(gradient(), Rows=1000, Columns=1000, NumberOfFrames=1000))


def test_too_small(make_dicom):
    with pytest.raises(ScanError, match="minimum is 16 pixels"):
        load_scan(make_dicom(np.zeros((1, 1), np.uint16)))


@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")
def test_truncated_and_garbage(make_dicom):
    data = make_dicom(gradient(32, 32))
    with pytest.raises(ScanError):
        load_scan(data[: len(data) - 300])
    with pytest.raises(ScanError):
        load_scan(b"\x00" * 128 + b"DICM" + b"\xff" * 50)


# --- bundled compressed files -------------------------------------------------------------

BUNDLED = [
    "JPEG2000.dcm",  # JPEG 2000
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "693_J2KI.dcm",  # JPEG 2000, CT with rescale + window
    "JPGExtended.dcm",  # JPEG extended 12-bit
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL colour
    "examples_ybr_color.dcm",  # JPEG baseline YBR_FULL_422, 30 frames
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless SV1
    "MR_small_RLE.dcm",  # RLE
    "SC_rgb_rle_2frame.dcm",  # RLE colour, 2 frames
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "SC_rgb_jls_lossy_line.dcm",  # JPEG-LS near-lossless colour
    "image_dfl.dcm",  # deflated
    "MR_small_bigendian.dcm",  # explicit big endian
    "examples_palette.dcm",  # PALETTE COLOR
]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_files_decode(name):
    pixels, n_frames, index, meta, _ = read_dicom(bundled(name))
    assert pixels.dtype == np.float32 and pixels.ndim == 2
    assert np.isfinite(pixels).all() and pixels.min() >= 0.0 and pixels.max() <= 1.0
    assert pixels.max() > pixels.min()
    assert index == n_frames // 2 and meta["frames"] == n_frames


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_lossless_matches_uncompressed(name):
    np.testing.assert_array_equal(load_scan(bundled(name)).pixels, load_scan(bundled("MR_small.dcm")).pixels)


def test_ts_name():
    assert ts_name("1.2.840.10008.1.2.4.50") == "JPEG Baseline (Process 1)"
    assert ts_name("1.2.840.10008.1.2.4.112") == "JPEG XL"
    assert ts_name("1.2.3") == "unknown transfer syntax"


# --- privacy ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The PN component length:UserWarning")
def test_identifiers_never_leak(make_dicom, caplog):
    good = make_dicom(gradient(), PatientName="Doe^Jane" * 10)  # over-long PN: would warn if ever decoded
    no_pixels_ds = Dataset()
    no_pixels_ds.Modality = "MR"
    no_pixels_ds.PatientName = "Doe^Jane"
    no_pixels_ds.PatientID = "DOE-4711"
    buf = BytesIO()
    no_pixels_ds.save_as(buf, implicit_vr=True, little_endian=True)
    bad_inputs = [
        buf.getvalue(),
        unsupported_syntax("1.2.840.10008.1.2.4.110"),
        good[: len(good) - 200],
        make_dicom(gradient(), Rows=9000, Columns=9000),
        make_dicom(frames(3)),
    ]
    caplog.clear()
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scan = load_scan(good, "x.dcm")
        texts += [repr(scan), str(scan.metadata), " ".join(scan.notes)]
        for i, data in enumerate(bad_inputs):
            try:
                load_scan(data, "y.dcm", frame=7 if i == len(bad_inputs) - 1 else None)
            except ScanError as exc:
                texts += [str(exc), repr(exc)]
            else:
                pytest.fail(f"bad input {i} loaded")
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(w.message) for w in caught]
    blob = "\n".join(texts)
    for secret in SECRETS:
        assert secret not in blob


# --- orientation -------------------------------------------------------------------------


@pytest.mark.parametrize(("orientation", "expected"), [
    ([1, 0, 0, 0, 1, 0], (False, False)),  # the usual axial view: rows to the patient's left, columns backwards
    ([1, 0, 0, 0, -1, 0], (True, False)),  # columns run forwards: the back of the head is at the top (BRATS)
    ([-1, 0, 0, 0, 1, 0], (False, True)),  # rows run to the patient's right
    ([-1, 0, 0, 0, -1, 0], (True, True)),
    ([0.98, 0.17, 0, -0.17, 0.98, 0], (False, False)),  # tilted 10 degrees: still the usual view
    ([0, 1, 0, 0, 0, -1], (False, False)),  # sagittal: left as stored
    ([0, 1, 0, 1, 0, 0], (False, False)),  # axial but turned by 90 degrees: left as stored
    (None, (False, False)),
    (["a", 0, 0, 0, 1, 0], (False, False)),
    ([1, 0, 0], (False, False)),
])
def test_axial_display_flips(orientation, expected):
    from brainscan.scans.dicom import axial_display_flips

    assert axial_display_flips(orientation) == expected


def test_a_slice_stored_back_of_head_up_is_shown_front_up_with_a_note(make_dicom):
    arr = np.zeros((16, 16), np.uint16)
    arr[1, 3] = 1000  # one bright pixel near the top-left corner as stored
    plain, _, _, _, notes = read_dicom(make_dicom(arr, ImageOrientationPatient=[1, 0, 0, 0, 1, 0]))
    assert np.unravel_index(plain.argmax(), plain.shape) == (1, 3) and not any("orientation" in n for n in notes)
    turned, _, _, _, notes = read_dicom(make_dicom(arr, ImageOrientationPatient=[1, 0, 0, 0, -1, 0]))
    assert np.unravel_index(turned.argmax(), turned.shape) == (14, 3)
    assert any("front of the head at the top" in n for n in notes)
    both, _, _, _, _ = read_dicom(make_dicom(arr, ImageOrientationPatient=[-1, 0, 0, 0, -1, 0]))
    assert np.unravel_index(both.argmax(), both.shape) == (14, 12)
