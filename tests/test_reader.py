"""brainscan.scans.reader: bounded file reads (FIFO, devices, huge files) and the shared decode budget."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from brainscan.errors import ScanError
from brainscan.scans import reader


def png(mode: str, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def test_read_file_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    t = time.monotonic()
    with pytest.raises(ScanError, match="pipe.png is not a regular file"):
        reader.read_file(fifo)  # would block for ever without O_NONBLOCK
    assert time.monotonic() - t < 5
    with pytest.raises(ScanError, match="zero is not a regular file"):
        reader.read_file("/dev/zero")
    with pytest.raises(ScanError, match="is a folder"):
        reader.read_file(tmp_path)
    with pytest.raises(ScanError, match="missing.png was not found"):
        reader.read_file(tmp_path / "missing.png")


def test_read_file_size_limit_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(2 * 1024**3)  # 2 GB, sparse: refused from its size, never read
    with pytest.raises(ScanError, match="big.png is larger than 512 MB"):
        reader.read_file(big)
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 100)
    assert reader.read_file(small) == b"x" * 100
    with pytest.raises(ScanError, match="larger than 99 bytes"):
        reader.read_file(small, max_bytes=99)


def test_messages_never_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ScanError) as err:
        reader.read_file(tmp_path / "secret-folder" / "id_rsa")
    assert "secret-folder" not in str(err.value) and str(tmp_path) not in str(err.value)


def test_open_image_checks_the_header_before_decoding() -> None:
    with pytest.raises(ScanError, match="more than the 40,000,000 pixels|too large to open safely"):
        reader.open_image(png("L", (13000, 13000)), "huge.png")
    with pytest.raises(ScanError, match="not an image"):
        reader.open_image(b"not an image at all", "x")


def test_decode_shrinks_inside_pillow() -> None:
    with reader.open_image(png("RGBA", (6300, 6300)), "big.png") as img:
        small, size = reader.decode_image(img, "big.png", max_side=2048)
    assert size == (6300, 6300) and small.size == (2048, 2048) and small.mode == "RGBA"
    with reader.open_image(png("P", (3000, 1000)), "pal.png") as img:
        small, _ = reader.decode_image(img, "pal.png", max_side=300)
    assert small.size == (300, 100) and small.mode == "RGB"


def test_budget_waits_and_refuses() -> None:
    budget = reader.DecodeBudget(100)
    with pytest.raises(ScanError, match="would need"):
        with budget.reserve(101):
            pass
    order: list[str] = []

    def second() -> None:
        with budget.reserve(50):
            order.append("second")

    with budget.reserve(80):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        order.append("first released")
    t.join(5)
    assert order == ["first released", "second"]
    with budget.reserve(80), pytest.raises(ScanError, match="busy"), budget.reserve(60, timeout=0.1):
        pass
    assert budget.peak <= 100


def test_decoded_size() -> None:
    assert reader.bytes_per_pixel("RGB") == 4 and reader.bytes_per_pixel("I;16") == 2
    assert reader.bytes_per_pixel("L") == 1
    assert reader.decoded_size(Image.new("L", (100, 100))) == 100 * 100
    assert reader.decoded_size(Image.new("P", (100, 100))) == 100 * 100 * 5
