"""Batch-convert scans (DICOM or images) to plain 8-bit grayscale PNG/JPEG.

For each input file one output ``<out_dir>/<stem>.<ext>`` is written holding the
*selected* frame (default: the middle frame of a multi-frame DICOM) exactly as
:func:`brainscan.scans.io.load_scan` prepares it for display (windowed, inverted if
MONOCHROME1, downscaled to at most MAX_SIDE), as 8-bit grayscale. Output files
are written from the pixel array alone: no text chunks, no EXIF, no DICOM
values, so they carry no identifiers. If two inputs share a stem, later ones
get ``_2``, ``_3``, ... suffixes. Directories are walked recursively in sorted
order, skipping hidden entries (names starting with ".") and ``out_dir`` itself.
Writes are atomic (hidden temp file in ``out_dir`` + os.replace).
"""

from __future__ import annotations

import os
import uuid

import numpy as np
from PIL import Image

from brainscan.scans.io import ScanError, load_scan_path, to_uint8

__all__ = ["FORMATS", "convert_paths"]

# --format value -> (Pillow format, file extension)
FORMATS: dict[str, tuple[str, str]] = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg"), "jpeg": ("JPEG", ".jpg")}


def _expand(path: str, out_dir: str) -> list[str] | None:
    """Files under ``path`` (sorted, recursive; hidden entries and out_dir skipped), or None if it is a file."""
    if not os.path.isdir(path):
        return None
    out_real = os.path.realpath(out_dir)
    found: list[str] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) != out_real
        )
        found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return found


def _write(pixels_u8: np.ndarray, dest: str, pil_format: str) -> None:
    img = Image.fromarray(pixels_u8)  # 2-D uint8 -> mode "L"; no info/exif attached
    # os.open with 0o666 so the final file gets the usual umask-based mode (mkstemp would give 0600).
    tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            if pil_format == "JPEG":
                img.save(fh, format="JPEG", quality=95)
            else:
                img.save(fh, format="PNG", optimize=True)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def convert_paths(paths: list[str], out_dir: str, fmt: str = "png", frame: int | None = None) -> list[dict]:
    """Convert files (directories are expanded recursively) into ``out_dir``.

    Returns one dict per input file: ``{"file": path, "output": out_path}`` or
    ``{"file": path, "error": sentence}``. An empty folder gives one error dict.
    Raises ValueError for an unknown ``fmt``.
    """
    key = fmt.lower().lstrip(".")
    if key not in FORMATS:
        raise ValueError(f"Unknown output format {fmt!r}; use png or jpg.")
    pil_format, ext = FORMATS[key]

    # Expand everything first so outputs written below are never picked up as inputs.
    inputs: list[tuple[str, str | None]] = []  # (file, error-if-any)
    for path in map(os.fspath, paths):
        expanded = _expand(path, out_dir)
        if expanded is None:
            inputs.append((path, None if os.path.exists(path) else "File not found."))
        elif not expanded:
            inputs.append((path, "The folder contains no files."))
        else:
            inputs.extend((f, None) for f in expanded)

    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError:
        error = f"Could not create the output folder {out_dir}."
        return [{"file": path, "error": err or error} for path, err in inputs]

    results: list[dict] = []
    used: set[str] = set()
    for path, error in inputs:
        if error is not None:
            results.append({"file": path, "error": error})
            continue
        try:
            scan = load_scan_path(path, frame=frame)
        except ScanError as exc:
            results.append({"file": path, "error": str(exc)})
            continue
        except Exception:  # noqa: BLE001 - keep the batch going; no raw text (privacy)
            results.append({"file": path, "error": "This file could not be converted (unexpected error)."})
            continue
        stem = os.path.splitext(os.path.basename(path))[0] or "scan"
        candidate, n = stem, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{stem}_{n}"
        used.add(candidate.lower())
        dest = os.path.join(out_dir, candidate + ext)
        try:
            _write(to_uint8(scan.pixels), dest, pil_format)
        except OSError:
            results.append({"file": path, "error": "Could not write the output file."})
            continue
        results.append({"file": path, "output": dest})
    return results
