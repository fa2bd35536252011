"""The one way an image file becomes pixels: bounded file reads, header checks and a decode budget.

Every decode in brainscan (scan page, CLI, dataset summary, training, conversion) goes through here:

* :func:`read_file` reads a regular file only (never a pipe, device or folder) and at most ``max_bytes``.
* :func:`open_image` opens bytes with Pillow (a fixed list of formats), checks the header's size against
  ``MAX_PIXELS`` *before* decoding and refuses decompression bombs in one sentence.
* :data:`BUDGET` is shared by all threads of the process: a decode first reserves its decoded size (and the
  copy a conversion makes), waiting while other decodes hold the rest. A single image larger than
  ``MAX_DECODED_BYTES`` is refused. So N concurrent visitors or hashing threads cannot add up to more than
  ``BUDGET_BYTES`` of decoded pixels, whatever they upload.
* :func:`decode_image` shrinks an image larger than ``max_side`` inside Pillow (box filter) before any NumPy
  or float copy is made, so the float pipeline after it sees at most max_side x max_side pixels.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO

from PIL import Image

from brainscan.errors import ScanError
from brainscan.scans.pixels import MAX_FILE_BYTES, MAX_PIXELS, MIN_SIDE

MB = 1024 * 1024
MAX_DECODED_BYTES: int = 256 * MB  # one decode: its pixels plus a palette conversion (40 MP RGBA is 160 MB)
BUDGET_BYTES: int = 320 * MB  # all decodes of this process at one moment (two 40 MP RGBA images)
HASH_SIDE: int = 2048  # perceptual hashes of larger images are taken from a box-shrunk copy (none in ../shared/data
#                        is larger: 1920 px at most, so their hashes are exactly those of the full image)
BUDGET_WAIT_S: float = 120.0

# Formats we let Pillow open. Excludes e.g. EPS (runs Ghostscript) and exotic
# plugins; anything else is reported as "not an image we can read".
IMAGE_FORMATS: tuple[str, ...] = (
    "PNG", "JPEG", "JPEG2000", "BMP", "DIB", "TIFF", "WEBP", "GIF", "PPM", "TGA", "SGI", "PCX", "QOI", "AVIF",
)

Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own bomb check (warns above, raises above twice this)


def _return_big_buffers_to_the_system() -> bool:
    """glibc only: allocations of 1 MB or more are mmapped and unmapped on free (M_MMAP_THRESHOLD fixed).

    By default glibc raises that threshold after the first large free, so later decode buffers (Pillow's 16 MB
    blocks, NumPy arrays) come from per-thread heaps that keep them: measured, four hashing threads held
    1.3 GB after hashing eight 6300x6300 RGBA images, and the issue saw 990 MB still held after the sessions
    closed. With the fixed threshold memory goes back as soon as an image is released.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_mmap_threshold, m_arena_max = -3, -8
        return bool(libc.mallopt(m_mmap_threshold, 1024 * 1024)) and bool(libc.mallopt(m_arena_max, 4))
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False


MALLOC_TUNED = _return_big_buffers_to_the_system()


def label_of(name: str | os.PathLike | None) -> str:
    """The file name without folders (Windows or POSIX), for messages; never a server path."""
    base = re.split(r"[\\/]", os.fspath(name))[-1] if name else ""
    return base or "This file"


# --- bounded file reads -----------------------------------------------------------------------

def read_file(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES, label: str | None = None) -> bytes:
    """The bytes of a regular file, or ScanError (one sentence naming the file, not its folder).

    Opens without blocking (a FIFO would otherwise wait for a writer for ever), refuses anything that is not a
    regular file (pipes, devices such as /dev/zero, folders, sockets) and files larger than max_bytes; reads
    at most max_bytes + 1 bytes, so a file that grows while it is read is refused too.
    """
    label = label or label_of(path)
    limit = f"{max_bytes / MB:,.0f} MB" if max_bytes >= MB else f"{max_bytes:,} bytes"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ScanError(f"{label} was not found.") from None
    except IsADirectoryError:
        raise ScanError(f"{label} is a folder, not a file.") from None
    except PermissionError:
        raise ScanError(f"{label} could not be opened (permission denied).") from None
    except OSError:
        raise ScanError(f"{label} could not be read.") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ScanError(f"{label} is a folder, not a file.")
        if not stat.S_ISREG(st.st_mode):
            raise ScanError(f"{label} is not a regular file (a pipe, device or socket); it was not read.")
        if st.st_size > max_bytes:
            raise ScanError(f"{label} is larger than {limit}; it was not opened.")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(8 * MB, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise ScanError(f"{label} is larger than {limit}; it was not opened.")
        return b"".join(chunks)
    except ScanError:
        raise
    except OSError:
        raise ScanError(f"{label} could not be read.") from None
    finally:
        os.close(fd)


# --- the decode budget ------------------------------------------------------------------------

class DecodeBudget:
    """Bytes of decoded pixels that may exist at once in this process (all threads); see the module doc."""

    def __init__(self, total: int):
        self.total = total
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int, label: str = "This file", timeout: float | None = None) -> Iterator[None]:
        nbytes = max(0, int(nbytes))
        if nbytes > min(self.total, MAX_DECODED_BYTES):
            raise ScanError(f"{label} would need {nbytes / MB:,.0f} MB of memory to decode; the limit is "
                            f"{min(self.total, MAX_DECODED_BYTES) / MB:,.0f} MB.")
        deadline = time.monotonic() + (BUDGET_WAIT_S if timeout is None else timeout)
        with self._cond:
            while self.used + nbytes > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ScanError("The server is busy decoding other large images; please try again in a minute.")
                self._cond.wait(left)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._cond.notify_all()


BUDGET = DecodeBudget(BUDGET_BYTES)


def bytes_per_pixel(mode: str) -> int:
    """Pillow's storage per pixel: 1 for L/P/1, 2 for I;16*, 4 for everything else (RGB is stored as RGBX)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def decoded_size(img: Image.Image) -> int:
    """Bytes one frame takes once decoded, plus the full-size colour copy a palette or 1-bit image gets before
    it is shrunk, the uint16 array a 16-bit image is shrunk through, or the one band an RGBA or LA image is
    shrunk through at a time (the shrunk copy itself is small)."""
    width, height = img.size
    extra = 4 if img.mode in ("P", "PA", "1") else 2 if img.mode.startswith("I;16") else 1 if img.mode in (
        "RGBA", "LA") else 0
    return width * height * (bytes_per_pixel(img.mode) + extra)


# --- opening and decoding ---------------------------------------------------------------------

def bomb_error(label: str, exc: Exception) -> ScanError:
    # Pillow refuses very large headers inside Image.open, before we see the size; its message carries the count.
    match = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" ({int(match.group(1)):,} pixels)" if match else ""
    return ScanError(f"{label} is too large to open safely{size}; the limit is {MAX_PIXELS:,} pixels.")


def check_size(label: str, width: int, height: int, min_side: int = MIN_SIDE) -> None:
    if width * height > MAX_PIXELS:
        raise ScanError(f"{label} is {width}x{height} pixels, more than the {MAX_PIXELS:,} pixels we accept.")
    if min(width, height) < min_side:
        raise ScanError(f"{label} is {width}x{height} pixels; the minimum is {min_side} pixels per side.")


def open_image(data: bytes, label: str = "This file", min_side: int = MIN_SIDE) -> Image.Image:
    """Pillow image (header read, pixels not decoded) after the size check; ScanError otherwise."""
    try:
        img = Image.open(BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise bomb_error(label, exc) from exc
    except Exception as exc:  # noqa: BLE001 - anything Pillow cannot identify
        raise ScanError(f"{label} is not an image or DICOM file we can read.") from exc
    try:
        check_size(label, *img.size, min_side=min_side)
    except ScanError:
        img.close()
        raise
    return img


def decode_image(img: Image.Image, label: str = "This file", frame: int = 0, max_side: int | None = None,
                 min_side: int = MIN_SIDE) -> tuple[Image.Image, tuple[int, int]]:
    """Decode one frame inside the budget; returns (image no larger than max_side, original (w, h)).

    The returned image is a new, small one where shrinking was needed (box filter, done by Pillow before any
    NumPy copy exists); palette and 1-bit images are converted first so that the filter averages colours.
    """
    try:
        if frame:
            img.seek(frame)
            check_size(label, *img.size, min_side=min_side)
        size = img.size
        if max_side and img.format == "JPEG" and max(size) > 2 * max_side:
            img.draft(img.mode, (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale: less to hold
        with BUDGET.reserve(decoded_size(img), label):
            img.load()
            if max_side and max(img.size) > max_side:
                return _shrink(img, max_side, min_side), size
    except ScanError:
        raise
    except Image.DecompressionBombError as exc:
        raise bomb_error(label, exc) from exc
    except (MemoryError, Image.DecompressionBombWarning) as exc:
        raise ScanError(f"{label} is too large to decode here.") from exc
    except Exception as exc:  # noqa: BLE001 - truncated / corrupt data (OSError, SyntaxError, ...)
        raise ScanError(f"{label} looks truncated or damaged and could not be decoded.") from exc
    return img, size


def _shrink(img: Image.Image, max_side: int, min_side: int) -> Image.Image:
    """An area-averaged copy no larger than max_side, made without a second full-size copy where possible:
    Image.reduce (integer box average; RGBA and LA band by band, as Pillow would otherwise make a full
    premultiplied copy) and then a box resize of the already small image; 16-bit images through one uint16
    array and OpenCV's INTER_AREA."""
    scale = max_side / max(img.size)
    target = (max(min_side, round(img.size[0] * scale)), max(min_side, round(img.size[1] * scale)))
    info, fmt = dict(img.info), img.format
    if img.mode.startswith("I;16"):
        import cv2
        import numpy as np

        arr = np.asarray(img)
        small = Image.fromarray(cv2.resize(arr, target, interpolation=cv2.INTER_AREA))
    else:
        if img.mode in ("P", "PA", "1"):  # the filters need real colours: one full-size colour copy (budgeted)
            img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else
                              "L" if img.mode == "1" else "RGB")
        factor = max(img.size) // max_side
        if factor >= 2 and img.mode in ("RGBA", "LA"):
            # Pillow reduces (and resizes) these through a full premultiplied copy; band by band costs one band.
            small = Image.merge(img.mode, [img.getchannel(b).reduce(factor) for b in range(len(img.getbands()))])
        else:
            small = img.reduce(factor) if factor >= 2 else img
        if small.size != target:
            small = small.resize(target, Image.Resampling.BOX)
    small.info.update(info)
    small.format = fmt  # type: ignore[misc]
    return small


def read_gray(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> Image.Image:
    """A file as an 8-bit grayscale Pillow image at full resolution (ordinary formats; DICOM raises ScanError).

    For perceptual hashes and training: the same pixels Pillow's convert("L") gives, with the file, header and
    decode limits applied.
    """
    label = label_of(path)
    data = read_file(path, max_bytes, label)
    with open_image(data, label) as img:
        small, _ = decode_image(img, label)
        with BUDGET.reserve(small.size[0] * small.size[1], label):
            return small.convert("L")
