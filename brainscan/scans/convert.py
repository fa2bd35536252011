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

A volume (a NIfTI file, the DICOM series in a folder or a zip; brainscan.scans.studies) becomes its axial
slices, ``<out_dir>/<stem>_slice_000.<ext>`` from inferior to superior, in the display convention of
brainscan.scans.volume (anterior at the top, the patient's right on the left), windowed once for the whole volume.
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
    inputs = _volumes_first(inputs, out_dir, ext, pil_format, results, used)
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


def _stem(name: str, used: set[str]) -> str:
    from brainscan.scans.volume import file_stem

    stem = file_stem(name)
    candidate, n = stem, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{stem}_{n}"
    used.add(candidate.lower())
    return candidate


def _volumes_first(inputs: list[tuple[str, str | None]], out_dir: str, ext: str, pil_format: str,
                   results: list[dict], used: set[str]) -> list[tuple[str, str | None]]:
    """Write the slices of every volume among the inputs (NIfTI files, zips, DICOM series of a folder); return the
    inputs left to convert one file at a time."""
    taken: set[str] = set()
    folders: dict[str, list[str]] = {}
    for path, error in inputs:
        if error is None:
            folders.setdefault(os.path.dirname(path), []).append(path)
    for folder, files in folders.items():
        for study, members in _folder_studies(folder, files):
            taken.update(members)
            if study.kind == "refused":
                results.append({"file": study.name, "error": study.error})
                continue
            try:
                volume = study.load()
            except ScanError as exc:
                results.append({"file": study.name, "error": str(exc)})
                continue
            stem = _stem(study.name, used)
            outputs = []
            try:
                for k in range(volume.n_slices):
                    if k in volume.missing:
                        continue
                    dest = os.path.join(out_dir, f"{stem}_slice_{k:03d}{ext}")
                    _write(to_uint8(volume.slice_pixels(k)), dest, pil_format)
                    outputs.append(dest)
            except OSError:
                results.append({"file": study.name, "error": "Could not write the output files."})
                continue
            results.append({"file": study.name, "kind": "volume", "slices": volume.n_slices, "outputs": outputs})
    return [(p, e) for p, e in inputs if p not in taken]


def _folder_studies(folder: str, files: list[str]) -> list[tuple[object, list[str]]]:
    """(study, the files it takes) for the volumes among some files of one folder: each NIfTI file and zip, the
    DICOM files grouped into series; files that are single images are left out."""
    from brainscan.scans import reader
    from brainscan.scans.nifti import looks_like_nifti
    from brainscan.scans.studies import MAX_DICOM_FILES, Study, is_zip, peek, sort_files

    out: list[tuple[object, list[str]]] = []
    dicom: list[str] = []
    for f in files:
        head = peek(f)
        if (len(head) >= 132 and head[128:132] == b"DICM") or f.lower().endswith((".dcm", ".dicom")):
            dicom.append(f)
        elif is_zip(head) or looks_like_nifti(head, f):
            try:
                found = sort_files([(f, reader.read_file(f))])
            except ScanError as exc:
                found = [Study(f, "refused", error=str(exc))]
            volumes = [s for s in found if s.kind != "file"]
            if volumes:
                out.extend((s, [f]) for s in volumes)
    label = os.path.basename(folder) or folder or "."
    if len(dicom) > MAX_DICOM_FILES:
        return out + [(Study(label, "refused", error=f"{label} holds {len(dicom):,} DICOM files; at most "
                                                     f"{MAX_DICOM_FILES:,} are read at once (one series)."), dicom)]
    read = []
    for f in dicom:
        try:
            read.append((f, reader.read_file(f)))
        except ScanError:
            continue  # converted (and refused in words) one file at a time
    by_name = {os.path.basename(f): f for f, _ in read}
    for study in sort_files(read, folder=label) if read else []:
        if study.is_volume:
            out.append((study, [by_name[n] for n, _ in study.files if n in by_name]))
    return out
