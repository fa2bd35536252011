"""What was dropped or named, sorted into studies: each NIfTI file, each DICOM series, each other file.

A drop (the Scan page's files) or a path (the command line's file, folder or zip) becomes a list of
:class:`Study`, one per result row: a NIfTI volume, the files of one DICOM series (grouped by
SeriesInstanceUID; brainscan.scans.series), or a single file (an image or a lone DICOM slice, checked as
today). Zips are opened in memory with brainscan.scans.archive's checks. Too many DICOM files at once are
refused before any header is read (brainscan.scans.volume.MAX_SLICES).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from brainscan.errors import ArchiveError, ScanError
from brainscan.scans import reader
from brainscan.scans import volume as vol
from brainscan.scans.pixels import MAX_FILE_BYTES

MAX_DICOM_FILES = vol.MAX_SLICES
ZIP_MAX_FILES = 2 * vol.MAX_SLICES
ZIP_MAX_BYTES = MAX_FILE_BYTES // 2  # unpacked in memory: 256 MB holds a 512 x 512 x 400 series
ZIP_MAX_RATIO = 1000  # DICOM slices with a dark background deflate 100 times and more; the byte cap bounds a bomb


@dataclass(frozen=True, eq=False)
class Study:
    """One row of results. kind: "nifti", "dicom series", "file" (checked as a single image) or "refused"."""

    name: str
    kind: str
    files: tuple[tuple[str, bytes], ...] = ()  # nifti: one; file: one (or none with a path); series: every file
    path: str | None = None  # a file named on the command line, read only when it is checked
    error: str | None = None  # kind "refused": why, in one sentence
    series: tuple = field(default=(), repr=False)  # brainscan.scans.series.SeriesFile, for a DICOM series

    @property
    def is_volume(self) -> bool:
        return self.kind in ("nifti", "dicom series")

    def load(self, volume: int | None = None) -> vol.Volume:
        """The volume (ScanError when it cannot be one; nifti.MultiVolumeError for a 4-D file without volume)."""
        if self.kind == "nifti":
            from brainscan.scans.nifti import read_nifti

            name, data = self.files[0]
            return read_nifti(data, name, volume)
        if self.kind == "dicom series":
            from brainscan.scans.series import assemble

            return assemble(self.series, self.name)
        raise ScanError(self.error or f"{self.name} is not a volume.")


def is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _kind(name: str, data: bytes) -> str:
    from brainscan.scans.io import is_dicom
    from brainscan.scans.nifti import looks_like_nifti

    if is_zip(data):
        return "zip"
    if looks_like_nifti(data, name):
        return "nifti"
    if is_dicom(data):
        return "dicom"
    return "file"


def _base(name: str) -> str:
    return re.split(r"[\\/]", name)[-1] or name


def sort_files(files: Sequence[tuple[str, bytes]], *, folder: str | None = None) -> list[Study]:
    """Uploaded or read files -> studies, in the order each first appears. folder names the series when they
    come from one folder (a zip names its own)."""
    return [s for _, s in _sort(files, folder)]


def _sort(files: Sequence[tuple[str, bytes]], folder: str | None) -> list[tuple[int, Study]]:
    """sort_files with the index of each study's first file in ``files``."""
    # ((index in files, position in its zip), name, data, zip or folder it came from)
    expanded: list[tuple[tuple[int, int], str, bytes, str | None]] = []
    out: list[tuple[tuple[int, int], Study]] = []
    for index, (name, data) in enumerate(files):
        if is_zip(data):
            from brainscan.scans.archive import zip_members

            try:
                members = zip_members(data, ZIP_MAX_BYTES, ZIP_MAX_FILES, ZIP_MAX_RATIO)
            except ArchiveError as err:
                out.append(((index, 0), Study(_base(name), "refused", error=f"{_base(name)}: {err}")))
                continue
            expanded.extend(((index, j), f"{_base(name)}/{m}", d, _base(name)) for j, (m, d) in enumerate(members))
        else:
            expanded.append(((index, 0), name, data, folder))
    dicoms: list[tuple[tuple[int, int], str, bytes, str | None]] = []
    for index, name, data, origin in expanded:
        kind = _kind(name, data)
        if kind == "nifti":
            out.append((index, Study(_base(name), "nifti", ((_base(name), data),))))
        elif kind == "dicom":
            dicoms.append((index, name, data, origin))
        elif kind == "zip":
            out.append((index, Study(_base(name), "refused", error=f"{_base(name)} is a zip inside a zip; unpack "
                                                                   "the outer one first.")))
        else:
            out.append((index, Study(_base(name), "file", ((_base(name), data),))))
    out.extend(_series_studies(dicoms))
    return [(key[0], study) for key, study in sorted(out, key=lambda item: item[0])]


def _series_studies(dicoms: list[tuple[tuple[int, int], str, bytes, str | None]]
                    ) -> list[tuple[tuple[int, int], Study]]:
    from brainscan.scans.dicom import slice_header
    from brainscan.scans.series import SeriesFile, is_volume

    if len(dicoms) > MAX_DICOM_FILES:
        where = dicoms[0][3] or "The drop"
        return [(dicoms[0][0], Study(where, "refused", error=f"{where} holds {len(dicoms):,} DICOM files; at most "
                                                            f"{MAX_DICOM_FILES:,} are read at once (one series)."))]
    groups: dict[tuple[str | None, str], list[tuple[tuple[int, int], SeriesFile]]] = {}
    singles: list[tuple[tuple[int, int], Study]] = []
    for i, name, data, origin in dicoms:
        try:
            header = slice_header(data)
        except ScanError:
            singles.append((i, Study(_base(name), "file", ((_base(name), data),))))  # refused there, in words
            continue
        if not header.series:
            singles.append((i, Study(_base(name), "file", ((_base(name), data),))))
            continue
        groups.setdefault((origin, header.series), []).append((i, SeriesFile(_base(name), data, header)))
    per_origin: dict[str | None, int] = {}
    for (origin, _), members in groups.items():
        per_origin[origin] = per_origin.get(origin, 0) + int(is_volume([m for _, m in members]))
    seen: dict[str | None, int] = {}
    out = list(singles)
    for (origin, _), members in groups.items():
        files = [m for _, m in members]
        first = members[0][0]
        if not is_volume(files):
            out.extend((i, Study(m.name, "file", ((m.name, m.data),))) for i, m in members)
            continue
        seen[origin] = seen.get(origin, 0) + 1
        first_name = min(f.name for f in files)
        base = origin or (first_name if len(files) == 1 else f"{first_name} and {len(files) - 1} more")
        name = f"{base} (DICOM series, {len(files)} file{'s' if len(files) > 1 else ''})"
        if per_origin[origin] > 1:
            name = f"{base} (DICOM series {seen[origin]} of {per_origin[origin]}, {len(files)} files)"
        out.append((first, Study(name, "dicom series", tuple((m.name, m.data) for m in files), series=tuple(files))))
    return out


# --- paths (the command line) ---------------------------------------------------------------------------------

def peek(path: str, n: int = 1024) -> bytes:
    """The first n bytes of a regular file; b"" for anything else (a FIFO is never waited on, a device never read)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, n) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def _walk(folder: str) -> list[str]:
    found: list[str] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
    return found


def _looks_dicom(head: bytes, path: str) -> bool:
    return (len(head) >= 132 and head[128:132] == b"DICM") or path.lower().endswith((".dcm", ".dicom"))


def _volume_like(head: bytes, path: str) -> bool:
    from brainscan.scans.nifti import looks_like_nifti

    return is_zip(head) or looks_like_nifti(head, path) or (head[:2] == b"\x1f\x8b" and ".nii" in path.lower())


def studies_from_paths(paths: Iterable[str]) -> list[Study]:
    """Each path (file, folder or zip) -> studies, in order. A folder's DICOM files are read and grouped into
    series (at most MAX_DICOM_FILES); its other files stay paths, read one at a time when they are checked.
    A study of one file that is checked as a single image keeps its path (the command line names it)."""
    out: list[Study] = []
    for path in paths:
        if os.path.isdir(path):
            out.extend(_folder(path))
        else:
            out.extend(_file(path))
    return out


def _file(path: str) -> list[Study]:
    head = peek(path)
    if not (_volume_like(head, path) or _looks_dicom(head, path)):
        return [Study(path, "file", path=path)]
    try:
        found = sort_files([(path, reader.read_file(path))])
    except ScanError as err:
        return [Study(path, "refused", error=str(err))]
    return [Study(path, "file", path=path) if s.kind == "file" else s for s in found]


def _folder(folder: str) -> list[Study]:
    files = _walk(folder)
    label = os.path.basename(os.path.normpath(folder)) or folder
    heads = {f: peek(f) for f in files}
    dicom = [f for f in files if _looks_dicom(heads[f], f)]
    out: list[tuple[int, Study]] = []
    if len(dicom) > MAX_DICOM_FILES:
        out.append((files.index(dicom[0]), Study(label, "refused", error=(
            f"{label} holds {len(dicom):,} DICOM files; at most {MAX_DICOM_FILES:,} are read at once (one series)."))))
        dicom = []
    chosen = set(dicom)
    read: list[tuple[str, bytes]] = []
    at: list[int] = []
    for i, f in enumerate(files):
        if f in chosen:
            try:
                read.append((f, reader.read_file(f)))
                at.append(i)
            except ScanError as err:
                out.append((i, Study(f, "refused", error=str(err))))
        elif _volume_like(heads[f], f):
            out.extend((i, s) for s in _file(f))
        elif not _looks_dicom(heads[f], f):
            out.append((i, Study(f, "file", path=f)))
    for j, s in _sort(read, label):
        path = read[j][0]
        out.append((at[j], Study(path, "file", path=path) if s.kind == "file" else s))
    return [s for _, s in sorted(out, key=lambda item: item[0])]
