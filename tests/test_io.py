"""Image loading, refusals and the io helpers."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from io import BytesIO

import numpy as np
import pytest
from PIL import Image, ImageFile

import brainscan.scans.io as bio
from brainscan.scans.io import MAX_SIDE, Scan, ScanError, is_dicom, load_scan, load_scan_path, to_uint8


def encode(img: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def gray(h: int = 16, w: int = 16, value: int = 0) -> Image.Image:
    return Image.fromarray(np.full((h, w), value, np.uint8))


def patch_png_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width/height (and its CRC) of a PNG without touching the data."""
    assert png[12:16] == b"IHDR"
    body = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + body + struct.pack(">I", zlib.crc32(body)) + png[33:]


def never_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: object) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)


# --- formats and modes (hand-checked pixel values) -------------------------------------


def test_png_8bit_gray():
    arr = np.zeros((16, 20), np.uint8)
    arr[0, 0], arr[3, 4] = 51, 255
    scan = load_scan(encode(Image.fromarray(arr)), "g.png")
    assert isinstance(scan, Scan) and scan.kind == "image"
    assert scan.pixels.dtype == np.float32 and scan.pixels.shape == (16, 20)
    assert scan.pixels[0, 0] == pytest.approx(0.2) and scan.pixels[3, 4] == 1.0
    assert (scan.frame, scan.n_frames) == (0, 1)
    assert scan.metadata == {"format": "PNG", "mode": "L", "width": 20, "height": 16}


def test_png_16bit_min_max_stretch():
    arr = np.full((16, 16), 100, np.uint16)
    arr[0, 0], arr[0, 1], arr[0, 2] = 1100, 4100, 0
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    scan = load_scan(encode(img), "deep.png")
    assert scan.metadata["mode"] == "I;16"
    # min 0, max 4100 -> value / 4100
    assert scan.pixels[0, 0] == pytest.approx(1100 / 4100)
    assert scan.pixels[0, 1] == 1.0 and scan.pixels[0, 2] == 0.0
    assert any("0-4100" in n for n in scan.notes)


def test_rgb_luminance():
    arr = np.zeros((16, 16, 3), np.uint8)
    arr[0, 0], arr[0, 1], arr[0, 2], arr[0, 3] = (255, 0, 0), (0, 255, 0), (0, 0, 255), (100, 100, 100)
    scan = load_scan(encode(Image.fromarray(arr)), "c.png")
    np.testing.assert_allclose(scan.pixels[0, :4], [0.299, 0.587, 0.114, 100 / 255], atol=1e-6)
    assert any("grayscale" in n for n in scan.notes)


def test_rgba_composited_on_black():
    arr = np.zeros((16, 16, 4), np.uint8)
    arr[0, 0] = (255, 255, 255, 255)
    arr[0, 1] = (255, 255, 255, 51)
    arr[0, 2] = (255, 255, 255, 0)
    scan = load_scan(encode(Image.fromarray(arr)), "a.png")
    np.testing.assert_allclose(scan.pixels[0, :3], [1.0, 0.2, 0.0], atol=1e-6)
    assert any("black" in n for n in scan.notes)


def test_la_composited():
    arr = np.zeros((16, 16, 2), np.uint8)
    arr[0, 0] = (200, 255)
    arr[0, 1] = (200, 0)
    scan = load_scan(encode(Image.fromarray(arr, "LA")), "la.png")
    np.testing.assert_allclose(scan.pixels[0, :2], [200 / 255, 0.0], atol=1e-6)


def test_palette():
    img = Image.new("P", (16, 16), 0)
    img.putpalette([0, 0, 0, 0, 0, 255, 255, 255, 255] + [0] * (256 * 3 - 9))
    img.putpixel((1, 0), 1)
    img.putpixel((2, 0), 2)
    scan = load_scan(encode(img), "p.png")
    assert scan.metadata["mode"] == "P"
    np.testing.assert_allclose(scan.pixels[0, :3], [0.0, 0.114, 1.0], atol=1e-6)


@pytest.mark.parametrize(
    ("fmt", "kwargs", "tol"),
    [("JPEG", {"quality": 95}, 0.02), ("BMP", {}, 0), ("TIFF", {}, 0), ("WEBP", {"lossless": True}, 0)],
)
def test_other_formats(fmt, kwargs, tol):
    arr = np.full((32, 32), 200, np.uint8)
    arr[:, :16] = 40
    scan = load_scan(encode(Image.fromarray(arr), fmt, **kwargs), "x")
    assert scan.metadata["format"] == fmt
    assert scan.pixels[8, 4] == pytest.approx(40 / 255, abs=tol + 1e-6)
    assert scan.pixels[8, 28] == pytest.approx(200 / 255, abs=tol + 1e-6)


def test_exif_orientation_applied():
    arr = np.zeros((16, 32), np.uint8)  # 32 wide, 16 high
    arr[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(Image.fromarray(arr), "JPEG", quality=100, exif=exif.tobytes())
    scan = load_scan(data, "phone.jpg")
    assert scan.pixels.shape == (32, 16)
    assert scan.pixels[0, 15] > 0.5  # top-left corner moved to top-right
    assert any("EXIF" in n for n in scan.notes)


def test_multipage_tiff_frame():
    pages = [gray(value=10), gray(value=200)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    first, second = load_scan(data), load_scan(data, frame=1)
    assert (first.n_frames, first.frame, second.frame) == (2, 0, 1)
    assert first.pixels[0, 0] == pytest.approx(10 / 255) and second.pixels[0, 0] == pytest.approx(200 / 255)
    with pytest.raises(ScanError, match="2 frame"):
        load_scan(data, "t.tif", frame=2)


def test_constant_image_loads_with_note():
    scan = load_scan(encode(gray(value=77)))
    assert np.allclose(scan.pixels, 77 / 255)
    assert any("single uniform value" in n for n in scan.notes)


def test_large_image_downscaled():
    arr = np.zeros((100, 3000), np.uint8)
    arr[:, 1500:] = 255
    scan = load_scan(encode(Image.fromarray(arr)), "wide.png")
    assert scan.pixels.shape == (68, MAX_SIDE)  # 100 * 2048 / 3000 = 68.3
    assert scan.pixels[0, 0] == 0.0 and scan.pixels[0, -1] == 1.0
    assert any("3000x100" in n and "2048" in n for n in scan.notes)


# --- refusals -------------------------------------------------------------------------


def test_empty():
    with pytest.raises(ScanError) as info:
        load_scan(b"", "x.png")
    assert str(info.value) == "The file is empty."


@pytest.mark.parametrize("name", ["notes.png", "notes.dcm"])
def test_text_is_refused(name):
    with pytest.raises(ScanError) as info:
        load_scan(b"hello, this is not a scan\n" * 20, name)
    assert str(info.value) == f"{name} is not an image or DICOM file we can read."


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(fmt):
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)), fmt)
    with pytest.raises(ScanError, match="truncated or damaged"):
        load_scan(data[: len(data) // 2], "half." + fmt.lower())


@pytest.mark.parametrize("size", [(1, 1), (15, 200)])
def test_too_small(size):
    with pytest.raises(ScanError, match="minimum is 16 pixels per side"):
        load_scan(encode(gray(*size)), "tiny.png")


def test_decompression_bomb_refused_by_pillow_header(monkeypatch):
    bomb = patch_png_size(encode(gray()), 50_000, 50_000)
    never_load(monkeypatch)
    with pytest.raises(ScanError) as info:
        load_scan(bomb, "bomb.png")
    assert "2,500,000,000 pixels" in str(info.value)


def test_too_large_refused_by_our_limit_before_decoding(monkeypatch):
    big = patch_png_size(encode(gray()), 8000, 6000)  # 48 M: under Pillow's limit, over ours
    never_load(monkeypatch)
    with pytest.raises(ScanError, match="8000x6000 pixels, more than the 40,000,000"):
        load_scan(big, "big.png")


def test_eps_is_not_opened():
    with pytest.raises(ScanError, match="not an image"):
        load_scan(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n" + b" " * 200, "x.eps")


def test_frame_must_be_int():
    with pytest.raises(ScanError):
        load_scan(encode(gray()), frame="1")  # type: ignore[arg-type]


# --- helpers --------------------------------------------------------------------------


def test_name_is_basename():
    assert load_scan(encode(gray()), "C:\\scans\\a\\b.png").name == "b.png"
    assert load_scan(encode(gray()), "/tmp/x/c.png").name == "c.png"


def test_to_uint8():
    out = to_uint8(np.array([0.0, 0.5, 1.0, np.nan, 2.0, -1.0, 0.2], np.float32))
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 128, 255, 0, 255, 0, 51]


def test_is_dicom(make_dicom):
    assert is_dicom(make_dicom(np.zeros((16, 16), np.uint16)))
    assert is_dicom(make_dicom(np.zeros((16, 16), np.uint16), preamble=False))
    assert not is_dicom(encode(gray()))
    assert not is_dicom(b"")
    assert not is_dicom(b"\x08\x00" + b"garbage!" * 40)


def test_load_scan_path(tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(encode(gray(value=51)))
    scan = load_scan_path(path)
    assert scan.name == "scan.png" and scan.pixels[0, 0] == pytest.approx(0.2)
    with pytest.raises(ScanError, match="missing.png was not found"):
        load_scan_path(tmp_path / "missing.png")
    with pytest.raises(ScanError, match="folder"):
        load_scan_path(tmp_path)


def test_load_scan_writes_nothing(tmp_path, monkeypatch, make_dicom):
    monkeypatch.chdir(tmp_path)
    load_scan(encode(gray()), "a.png")
    load_scan(make_dicom(np.arange(256, dtype=np.uint16).reshape(16, 16)), "b.dcm")
    assert os.listdir(tmp_path) == []


def test_limits_are_exported():
    assert bio.MAX_PIXELS == 40_000_000 and bio.MAX_SIDE == 2048 and bio.MIN_SIDE == 16


def test_no_tensorflow_import():
    code = (
        "import sys, brainscan.scans.io, brainscan.scans.dicom, brainscan.scans.convert; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_colour_photo_gets_a_not_mri_note_and_gray_rgb_does_not():
    rng = np.random.default_rng(0)
    colourful = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    scan = load_scan(encode(Image.fromarray(colourful)), "photo.png")
    assert any("may not be an MRI" in n for n in scan.notes)
    grayish = np.repeat(rng.integers(0, 256, (32, 32, 1), dtype=np.uint8), 3, axis=2)
    scan = load_scan(encode(Image.fromarray(grayish)), "mri_as_rgb.png")
    assert not any("may not be an MRI" in n for n in scan.notes)
