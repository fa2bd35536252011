"""DICOM bombs (issue 23): a deflated data set that inflates to 1 GB, compressed frames whose header declares
more than the decode budget, a codestream larger than its DICOM header says, and native pixel data declared
past the budget. Each is refused in one sentence, fast, with the peak memory of the process that refused it
barely above where it started (measured in a fresh subprocess: ru_maxrss before and after)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dicom_bombs import (
    GIB,
    deflated_dicom,
    encapsulated_bomb,
    native_bomb,
    write_deflate_bomb,
)
from PIL import Image

from brainscan.scans import reader
from brainscan.scans.io import ScanError, is_dicom, load_scan

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
# Every bomb below would need hundreds of MB to GB if decoded; refusing it may cost a few MB (the 1 MB inflate
# steps, pydicom's header parse), nothing like that.
MAX_RSS_GROWTH_MB = 48
MAX_SECONDS = 5.0

# Declares 20 frames of 4096 x 4096 x 8 bits: 320 MB decoded, under the pixel-count limits (16.8 MP a frame,
# 335 M in all) but over the 256 MB decode budget, so only the new declared-bytes check stops it.
DECLARED = {"rows": 4096, "columns": 4096, "frames": 20}

# Peak memory of this process image: VmHWM starts afresh at exec. (ru_maxrss does not: Linux carries the forked
# parent's peak into it, so under a large pytest process it read 1.4 GB before any work, and growth read 0.)
PEAK_KB = "int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"

_MEASURE = r"""
import json, re, sys, time
from brainscan.scans.io import load_scan, load_scan_path
from brainscan.scans.summary import _image_sizes
load_scan(open(sys.argv[3], "rb").read(), "warm.dcm")  # pydicom and its decoders imported, caches warm
before = PEAK
start = time.perf_counter()
error = None
try:
    if sys.argv[2] == "summary":
        sizes = _image_sizes([sys.argv[1]], 1)
        error = "unreadable" if sizes["unreadable"] == 1 else None
    elif sys.argv[2] == "bytes":
        load_scan(open(sys.argv[1], "rb").read(), "upload.dcm")
    else:
        load_scan_path(sys.argv[1])
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
seconds = time.perf_counter() - start
growth = (PEAK - before) / 1024
print(json.dumps({"error": error, "seconds": seconds, "growth_mb": growth}))
""".replace("PEAK", PEAK_KB)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bombs as files (the deflated one streamed to disk: the test never holds 1 GB) and a normal DICOM."""
    folder = tmp_path_factory.mktemp("bombs")
    write_deflate_bomb(str(folder / "deflate_bomb.dcm"))
    normal = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    (folder / "normal.dcm").write_bytes(deflated_dicom(normal))  # warms the deflated path too
    return folder


def measure(path: Path, normal: Path, surface: str = "path") -> dict:
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(path), surface, str(normal)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_refused_cheaply(result: dict, words: str) -> None:
    assert result["error"] is not None, "the bomb was decoded"
    if words:
        assert result["error"].startswith("ScanError: "), result["error"]
        assert any(w in result["error"] for w in words.split("|")), result["error"]
        sentence = result["error"].removeprefix("ScanError: ")
        assert sentence.count(". ") == 0 and sentence.endswith("."), sentence  # one sentence
    assert result["growth_mb"] < MAX_RSS_GROWTH_MB, result
    assert result["seconds"] < MAX_SECONDS, result


# --- the deflated data set: 1 MB on disk, 1 GB inflated ---------------------------------------------------


@pytest.mark.parametrize("surface", ["path", "bytes", "summary"])
def test_deflated_bomb_refused_while_inflating_on_every_path(files, surface):
    """path: the CLI's predict, conversion and training (load_scan_path); bytes: the scan page (load_scan of the
    upload); summary: the Train page's dataset summary (header sizes)."""
    bomb = files / "deflate_bomb.dcm"
    assert bomb.stat().st_size < 2 * MB
    result = measure(bomb, files / "normal.dcm", surface)
    assert_refused_cheaply(result, "" if surface == "summary" else "would inflate to more than 256 MB")


def test_deflated_bomb_without_preamble_is_recognised_without_inflating(files, tmp_path):
    data = (files / "deflate_bomb.dcm").read_bytes()[128 + 4:]  # no preamble: starts with the file meta group
    assert data[:2] == b"\x02\x00"
    (tmp_path / "no_preamble").write_bytes(data)
    assert is_dicom(data)
    assert_refused_cheaply(measure(tmp_path / "no_preamble", files / "normal.dcm"), "would inflate")


def test_dataset_summary_lists_the_deflated_bomb_as_unreadable(files, tmp_path):
    """The Train page's summary (hashing every file, sizes of a sample): the bomb is one unreadable file."""
    import shutil

    from brainscan.scans import summary

    for cls in ("yes", "no"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((64, 64), 40 * i + (cls == "yes") * 20, np.uint8)).save(tmp_path / cls / f"{i}.png")
    shutil.copy(files / "deflate_bomb.dcm", tmp_path / "yes" / "bomb.dcm")
    s = summary.dataset_summary(tmp_path, size_sample=0)
    assert s["n_images"] == 6
    assert [u["file"] for u in s["unreadable"]] == ["yes/bomb.dcm"]
    assert "would inflate to more than 256 MB" in s["unreadable"][0]["reason"]


def test_deflated_bomb_through_the_cli(files):
    """`python -m brainscan predict bomb.dcm`: one JSON line with the sentence, exit status 1, small peak."""
    code = ("import re, runpy, sys\n"
            "sys.argv = ['brainscan', 'predict', sys.argv[1]]\n"
            "try:\n    runpy.run_module('brainscan', run_name='__main__')\n"
            f"finally:\n    print('MAXRSS', {PEAK_KB}, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(files / "deflate_bomb.dcm")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "would inflate to more than 256 MB" in line["error"]
    assert "Traceback" not in proc.stderr
    peak_mb = int(proc.stderr.split("MAXRSS")[-1].split()[0]) / 1024
    assert peak_mb < 600, peak_mb  # the model and its runtime, not the bomb (2.2 GB before the fix)


def test_deflated_limit_is_the_decode_budget(monkeypatch):
    """Just over the budget: refused while inflating; under it: read."""
    monkeypatch.setattr(reader, "MAX_DECODED_BYTES", 8 * MB)
    small = np.arange(512 * 512, dtype=np.uint16).reshape(512, 512) % 4000  # 512 KB of pixels
    assert load_scan(deflated_dicom(small)).pixels.shape == (512, 512)
    big = np.zeros((2048, 2304), np.uint16)  # 9 MB of pixels inflated
    with pytest.raises(ScanError, match=r"would inflate to more than 8 MB"):
        load_scan(deflated_dicom(big))


def test_deflated_inflation_stops_at_the_budget(monkeypatch):
    """The deflated bomb's stream is never inflated past the budget (nor handed to pydicom at all)."""
    import zlib

    from dicom_bombs import deflate_bomb

    import brainscan.scans.dicom_budget as budget

    produced = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, wbits):
            self.inner = real(wbits)

        def decompress(self, data, max_length=0):
            out = self.inner.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(budget.zlib, "decompressobj", Counting)
    monkeypatch.setattr(budget.pydicom, "dcmread", lambda *a, **k: pytest.fail("pydicom saw the bomb"))
    with pytest.raises(ScanError, match="would inflate"):
        load_scan(deflate_bomb(reader.MAX_DECODED_BYTES + 64 * MB))  # budget + 64 MB of zeros
    assert sum(produced) <= reader.MAX_DECODED_BYTES + budget._INFLATE_OUT
    assert max(produced) <= budget._INFLATE_OUT


def test_normal_deflated_dicom_reads_the_same_pixels_as_uncompressed(make_dicom):
    rng = np.random.default_rng(0)
    arr = (rng.random((48, 40)) * 3000).astype(np.uint16)
    arr[10:20, 5:15] = 4000
    deflated = deflated_dicom(arr, WindowCenter=2000, WindowWidth=4000, PatientName="Doe^Jane")
    plain = make_dicom(arr, WindowCenter=2000, WindowWidth=4000)
    assert len(deflated) < len(plain) and deflated[128:132] == b"DICM" and b"1.2.840.10008.1.2.1.99" in deflated
    a, b = load_scan(deflated, "d.dcm"), load_scan(plain, "p.dcm")
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.metadata["transfer_syntax"] == "Deflated Explicit VR Little Endian"
    assert (a.metadata["rows"], a.metadata["columns"]) == (48, 40)
    # and the same pixels pydicom itself reads from the deflated file
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(deflated))
    np.testing.assert_array_equal(ds.pixel_array, arr)


def test_deflated_dicom_size_for_the_summary_reads_only_the_header(monkeypatch):
    from dicom_bombs import deflate_bomb

    from brainscan.scans.dicom import dicom_size

    assert dicom_size(deflated_dicom(np.zeros((32, 48), np.uint8))) == (48, 32)
    monkeypatch.setattr(reader, "MAX_DECODED_BYTES", 128 * MB)
    assert dicom_size(deflate_bomb(64 * MB)) == (256, 256)  # measured, then only the header parsed
    with pytest.raises(ScanError, match="would inflate to more than 128 MB"):
        dicom_size(deflate_bomb(130 * MB))


@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")
def test_damaged_deflate_stream_is_one_sentence():
    data = deflated_dicom(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 1000)
    with pytest.raises(ScanError, match="damaged or incomplete"):
        load_scan(data[:-40])  # the stream ends before its last block
    with pytest.raises(ScanError, match=r"^[^\n]+\.$"):
        load_scan(data[:200] + b"\xff" * 64 + data[264:])  # garbage inside: refused in one sentence, whichever


# --- compressed pixel data declaring more than the budget -----------------------------------------------

COMPRESSED = {
    "jpeg_baseline": "1.2.840.10008.1.2.4.50",
    "jpeg_lossless": "1.2.840.10008.1.2.4.70",
    "jpeg_lossless_14": "1.2.840.10008.1.2.4.57",
    "jpeg_2000_lossless": "1.2.840.10008.1.2.4.90",
    "jpeg_2000": "1.2.840.10008.1.2.4.91",
    "htj2k_lossless": "1.2.840.10008.1.2.4.201",
    "rle": "1.2.840.10008.1.2.5",
    "jpeg_ls_lossless": "1.2.840.10008.1.2.4.80",
    "jpeg_ls_near_lossless": "1.2.840.10008.1.2.4.81",
    "deflated_image_frame": "1.2.840.10008.1.2.8.1",
}


@pytest.mark.parametrize("name", list(COMPRESSED))
def test_declared_compressed_frames_over_the_budget_refused_from_the_header(name, files, tmp_path, monkeypatch):
    data = encapsulated_bomb(COMPRESSED[name], **DECLARED)
    assert len(data) < 4096
    # refused before any decoder runs ...
    import brainscan.scans.dicom as dcm

    monkeypatch.setattr(dcm, "pixel_array", lambda *a, **k: pytest.fail("decoded"))
    # (pydicom 3.0.2 has no decoder for the deflated image frame syntax: refused as such, also from the header)
    words = "Cannot decode this DICOM's compression" if name == "deflated_image_frame" else "320 MB once decoded"
    with pytest.raises(ScanError, match=words):
        load_scan(data, "x.dcm")
    # ... cheaply, in a process of its own
    (tmp_path / "bomb.dcm").write_bytes(data)
    assert_refused_cheaply(measure(tmp_path / "bomb.dcm", files / "normal.dcm"), words)


def test_declared_colour_16_bit_frames_count_every_byte():
    """Rows x Columns x SamplesPerPixel x BitsAllocated/8 x NumberOfFrames: 2048 x 2048 x 3 x 2 x 6 = 144 MB is
    read as far as the budget goes; x 12 frames = 288 MB is refused."""
    with pytest.raises(ScanError, match="288 MB once decoded"):
        load_scan(encapsulated_bomb(COMPRESSED["rle"], rows=2048, columns=2048, frames=12, samples=3, bits=16))


def _patched_jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((256, 256), 100, np.uint8)).save(buf, format="JPEG")
    code = bytearray(buf.getvalue())
    at = code.index(b"\xff\xc0")
    struct.pack_into(">HH", code, at + 5, height, width)
    return bytes(code)


def _patched_j2k(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((256, 256), 100, np.uint8)).save(buf, format="JPEG2000", no_jp2=True)
    code = bytearray(buf.getvalue())
    assert code[:4] == b"\xff\x4f\xff\x51"
    struct.pack_into(">II", code, 8, width, height)
    return bytes(code)


@pytest.mark.parametrize(("syntax", "fragment"), [
    ("1.2.840.10008.1.2.4.50", _patched_jpeg(60000, 60000)),
    ("1.2.840.10008.1.2.4.90", _patched_j2k(60000, 60000)),
], ids=["jpeg_baseline", "jpeg_2000"])
def test_codestream_larger_than_its_header_refused_before_decoding(syntax, fragment, files, tmp_path, monkeypatch):
    """A 256 x 256 DICOM whose JPEG / JPEG 2000 frame says 60000 x 60000 (3.6 GB once decoded)."""
    data = encapsulated_bomb(syntax, rows=256, columns=256, fragment=fragment)
    import brainscan.scans.dicom as dcm

    monkeypatch.setattr(dcm, "pixel_array", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(ScanError, match="60000x60000 pixels, larger than the 256x256 its header declares"):
        load_scan(data, "x.dcm")
    (tmp_path / "bomb.dcm").write_bytes(data)
    assert_refused_cheaply(measure(tmp_path / "bomb.dcm", files / "normal.dcm"), "larger than the 256x256")


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90"])
def test_honest_small_codestreams_still_decode(syntax):
    fragment = _patched_jpeg(256, 256) if syntax.endswith("50") else _patched_j2k(256, 256)
    scan = load_scan(encapsulated_bomb(syntax, rows=256, columns=256, fragment=fragment), "x.dcm")
    assert scan.pixels.shape == (256, 256)


# --- native pixel data declaring more than the budget -----------------------------------------------------


def test_declared_native_frames_over_the_budget_refused_from_the_header(files, tmp_path, monkeypatch):
    data = native_bomb(bits=8, **DECLARED)
    import brainscan.scans.dicom_budget as budget

    reads = []
    real = budget.pydicom.dcmread
    monkeypatch.setattr(budget.pydicom, "dcmread", lambda *a, **k: reads.append(k) or real(*a, **k))
    with pytest.raises(ScanError, match="320 MB once decoded"):
        load_scan(data, "x.dcm")
    assert [k["stop_before_pixels"] for k in reads] == [True]  # the pixel data was never read
    (tmp_path / "bomb.dcm").write_bytes(data)
    assert_refused_cheaply(measure(tmp_path / "bomb.dcm", files / "normal.dcm"), "320 MB once decoded")


def test_native_data_within_the_budget_still_reads(make_dicom):
    frames = np.stack([np.full((64, 64), 100 * (k + 1), np.uint16) for k in range(5)])
    scan = load_scan(make_dicom(frames, WindowCenter=300, WindowWidth=600))
    assert scan.n_frames == 5 and scan.frame == 2


def test_bomb_helpers_are_what_they_say():
    """The 1 GB bomb really declares 2^30 bytes of OB pixel data behind an explicit VR little endian header."""
    import zlib

    from dicom_bombs import deflate_bomb_chunks

    pieces = deflate_bomb_chunks(GIB)
    head = next(pieces)
    assert head[:128] == bytes(128) and head[128:132] == b"DICM" and b"1.2.840.10008.1.2.1.99" in head
    first = zlib.decompressobj(-15).decompress(next(pieces) + next(pieces), 4096)
    at = first.index(b"\xe0\x7f\x10\x00OB\x00\x00")
    assert struct.unpack_from("<I", first, at + 8)[0] == GIB
    assert b"\x08\x00\x60\x00CS\x02\x00MR" in first  # Modality MR
