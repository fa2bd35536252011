"""convert_paths: batch conversion to identifier-free PNG/JPEG."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from PIL import Image

from brainscan.scans.convert import convert_paths

WINDOW = {"WindowCenter": 50, "WindowWidth": 100, "VOILUTFunction": "LINEAR_EXACT"}  # y = x / 100


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, names = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        names.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return names


@pytest.fixture
def tree(tmp_path, make_dicom):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    a = np.zeros((16, 16), np.uint16)
    a[0, 0] = 25
    (src / "a.dcm").write_bytes(make_dicom(a, **WINDOW))  # carries PatientName Doe^Jane
    (src / "sub" / "IM0002").write_bytes(
        make_dicom(np.full((24, 32), 50, np.uint16), PatientName="Anon", PatientID="X", **WINDOW)
    )
    (src / "sub" / "notes.txt").write_text("not a scan\n" * 10)
    (src / ".DS_Store").write_bytes(b"\x00\x01junk")
    return src


def test_directory_conversion(tree, tmp_path):
    out = tmp_path / "out"
    results = convert_paths([str(tree)], str(out))
    assert [r["file"] for r in results] == [
        str(tree / "a.dcm"), str(tree / "sub" / "IM0002"), str(tree / "sub" / "notes.txt")
    ]
    ok, err = results[:2], results[2]
    assert [r["output"] for r in ok] == [str(out / "a.png"), str(out / "IM0002.png")]
    assert set(err) == {"file", "error"} and err["error"] == "notes.txt is not an image or DICOM file we can read."

    a_bytes = (out / "a.png").read_bytes()
    for needle in (b"Doe", b"Jane", b"DOE-4711", b"19800101"):
        assert needle not in a_bytes
    assert png_chunks(a_bytes) == [b"IHDR", b"IDAT", b"IEND"]
    with Image.open(out / "a.png") as img:
        assert (img.mode, img.size) == ("L", (16, 16))
        assert img.getpixel((0, 0)) == 64  # 25 / 100 * 255 = 63.75
        assert img.info == {}
    with Image.open(out / "IM0002.png") as img:
        assert img.size == (32, 24) and img.getpixel((5, 5)) == 128  # 0.5 * 255 = 127.5
    assert sorted(os.listdir(out)) == ["IM0002.png", "a.png"]  # no temp files left


def test_jpeg_output(tree, tmp_path):
    out = tmp_path / "jpg"
    results = convert_paths([str(tree / "a.dcm")], str(out), fmt="jpg")
    assert results == [{"file": str(tree / "a.dcm"), "output": str(out / "a.jpg")}]
    data = (out / "a.jpg").read_bytes()
    assert data[:2] == b"\xff\xd8" and b"Exif" not in data and b"Doe" not in data
    with Image.open(out / "a.jpg") as img:
        assert img.format == "JPEG" and img.mode == "L" and img.size == (16, 16)


def test_stem_collisions_and_missing(tmp_path, make_dicom):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "scan.dcm").write_bytes(make_dicom(np.arange(256, dtype=np.uint16).reshape(16, 16)))
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    results = convert_paths(
        [str(tmp_path / "x"), str(tmp_path / "y"), str(tmp_path / "nope.dcm"), str(tmp_path / "empty")], str(out)
    )
    assert [r.get("output") for r in results[:2]] == [str(out / "scan.png"), str(out / "scan_2.png")]
    assert results[2] == {"file": str(tmp_path / "nope.dcm"), "error": "File not found."}
    assert results[3] == {"file": str(tmp_path / "empty"), "error": "The folder contains no files."}


def test_frame_selection(tmp_path, make_dicom):
    stack = np.stack([np.full((16, 16), v, np.uint16) for v in (20, 40, 60)])
    path = tmp_path / "multi.dcm"
    path.write_bytes(make_dicom(stack, **WINDOW))
    out = tmp_path / "out"
    convert_paths([str(path)], str(out))
    with Image.open(out / "multi.png") as img:
        assert img.getpixel((0, 0)) == 102  # middle frame: 0.4 * 255
    convert_paths([str(path)], str(out), frame=0)
    with Image.open(out / "multi.png") as img:
        assert img.getpixel((0, 0)) == 51  # 0.2 * 255
    assert "3 frame" in convert_paths([str(path)], str(out), frame=5)[0]["error"]


def test_out_dir_inside_input_is_not_reprocessed(tree):
    out = tree / "converted"
    first = convert_paths([str(tree)], str(out))
    second = convert_paths([str(tree)], str(out))
    assert len(first) == len(second) == 3


def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="png or jpg"):
        convert_paths([], str(tmp_path), fmt="gif")


def test_output_mode_follows_umask(tree, tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    out = tmp_path / "out"
    convert_paths([str(tree / "a.dcm")], str(out))
    assert (out / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_out_dir_is_a_file(tree, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    results = convert_paths([str(tree / "a.dcm"), str(tmp_path / "missing")], str(blocker))
    assert results == [
        {"file": str(tree / "a.dcm"), "error": f"Could not create the output folder {blocker}."},
        {"file": str(tmp_path / "missing"), "error": "File not found."},
    ]
