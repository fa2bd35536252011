"""Safe extraction of an uploaded dataset zip.

Refused with one clear sentence (ArchiveError): entries with absolute paths or '..', symbolic links
and other special files, encrypted entries, too many files, too many bytes (declared and actually
written), entries over 1 KB that inflate more than max_ratio times, and archives whose total does
(so many small entries cannot add up to a bomb either). macOS junk (__MACOSX/, .DS_Store) is skipped.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from brainscan.errors import ArchiveError  # noqa: F401 - raised here, caught by callers as archive.ArchiveError

MB = 1024 * 1024
JUNK_PARTS = {"__MACOSX"}
JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
RATIO_MIN_BYTES = 1024  # below this an entry's ratio says little (deflate needs ~10 bytes for anything)


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path parts of an entry name, or ArchiveError for absolute paths and '..'."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[0].isalpha() and norm[1] == ":") or "\x00" in norm:
        raise ArchiveError(f"The zip contains an absolute path ({name}); it was not extracted.")
    parts = tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError(f"The zip contains a path that leaves its folder ({name}); it was not extracted.")
    return parts


def _is_junk(parts: tuple[str, ...]) -> bool:
    return bool(parts) and (parts[0] in JUNK_PARTS or parts[-1] in JUNK_NAMES or parts[-1].startswith("._"))


def _check(infos: list[zipfile.ZipInfo], max_total_bytes: int, max_files: int, max_ratio: float,
           zip_bytes: int | None = None) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    entries = []
    for info in infos:
        parts = _safe_parts(info.filename)
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise ArchiveError(f"The zip contains a symbolic link ({info.filename}); links are not allowed.")
        if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"The zip contains a special file ({info.filename}); only files and folders "
                               "are allowed.")
        if info.flag_bits & 0x1:
            raise ArchiveError("The zip is password-protected; upload an unencrypted zip.")
        if parts and not _is_junk(parts):
            entries.append((info, parts))
    files = [(i, p) for i, p in entries if not i.is_dir()]
    if not files:
        raise ArchiveError("The zip contains no files.")
    if len(files) > max_files:
        raise ArchiveError(f"The zip contains {len(files):,} files; at most {max_files:,} are allowed.")
    total = sum(i.file_size for i, _ in files)
    if total > max_total_bytes:
        raise ArchiveError(f"The zip unpacks to {total / MB:,.0f} MB; at most {max_total_bytes / MB:,.0f} MB "
                           "are allowed.")
    if zip_bytes is not None and total > RATIO_MIN_BYTES and total > max_ratio * max(zip_bytes, 1):
        # Many small entries under the per-entry floor still add up: the whole zip has the same ratio cap.
        raise ArchiveError(f"The zip would inflate {total / max(zip_bytes, 1):,.0f} times ({zip_bytes / MB:,.1f} MB to "
                           f"{total / MB:,.0f} MB; a zip bomb?); at most {max_ratio:g} times is allowed.")
    for info, _ in files:
        if info.file_size > RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise ArchiveError(f"{info.filename} would inflate {info.file_size / max(info.compress_size, 1):,.0f}"
                               f" times (a zip bomb?); at most {max_ratio:g} times is allowed.")
    return entries


NAME_MAX_BYTES = 255  # one file or folder name (the usual file-system limit)
PATH_MAX_BYTES = 1024  # a whole entry name inside the destination


def _shown(name: str, limit: int = 60) -> str:
    """An entry name as a message shows it: at most limit characters."""
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _check_names(entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> None:
    """What writing the entries to disk would trip over, refused before anything is written: a name longer than
    the file system allows, a very long path, the same file twice, a name that is a file and a folder at once."""
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    for info, parts in entries:
        for part in parts:
            if len(part.encode("utf-8", errors="surrogateescape")) > NAME_MAX_BYTES:
                raise ArchiveError(f"The zip contains a name longer than {NAME_MAX_BYTES} bytes ({_shown(part)}); "
                                   "rename it and zip the folder again.")
        if len("/".join(parts).encode("utf-8", errors="surrogateescape")) > PATH_MAX_BYTES:
            raise ArchiveError(f"The zip contains a path longer than {PATH_MAX_BYTES} bytes "
                               f"({_shown(info.filename)}); shorten it and zip the folder again.")
        if info.is_dir():
            folders.add(parts)
        elif parts in files:
            raise ArchiveError(f"The zip contains {_shown(info.filename)} twice; it was not extracted.")
        else:
            files.add(parts)
        folders.update(parts[:k] for k in range(1, len(parts)))
    clash = sorted(files & folders)
    if clash:
        raise ArchiveError(f"The zip contains {_shown('/'.join(clash[0]))} both as a file and as a folder; it was "
                           "not extracted.")


def _dataset_root(dest: Path, max_depth: int = 4) -> Path:
    """Descend through single top folders (e.g. archive/ or data/) down to where the content starts."""
    from brainscan.scans.datasets import SPLIT_NAMES, canonical_class

    root = dest
    for _ in range(max_depth):
        kids = [c for c in root.iterdir() if not c.name.startswith(".")]
        if len(kids) != 1 or not kids[0].is_dir():
            break
        name = kids[0].name
        if canonical_class(name) or name.lower() in SPLIT_NAMES:
            break
        root = kids[0]
    return root


def declared_bytes(data: bytes) -> int:
    """What the zip's entries declare they unpack to (0 for a file that is not a readable zip); checked again,
    entry by entry, while extracting."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return sum(max(0, i.file_size) for i in zf.infolist() if not i.is_dir())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        return 0


def extract_zip(data: bytes, dest: str | os.PathLike, max_total_bytes: int = 500 * MB, max_files: int = 20000,
                max_ratio: float = 100) -> Path:
    """Extract a zip (bytes) into dest after checking every entry; returns the dataset root inside.

    On any refusal nothing stays behind: dest is removed if this call created it, else emptied of
    what it wrote.
    """
    dest = Path(dest)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as err:
        raise ArchiveError("The upload is not a readable zip file.") from err
    created = not dest.exists()
    written: list[Path] = []
    with zf:
        entries = _check(zf.infolist(), max_total_bytes, max_files, max_ratio, len(data))
        _check_names(entries)
        dest.mkdir(parents=True, exist_ok=True)
        base = dest.resolve()
        total = 0
        info = None
        try:
            for info, parts in entries:
                target = base.joinpath(*parts)
                if not target.resolve().is_relative_to(base):
                    raise ArchiveError(f"The zip contains a path that leaves its folder ({info.filename}).")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    raise ArchiveError(f"The zip contains {info.filename} twice.")
                size = 0
                with zf.open(info) as src, open(target, "xb") as out:
                    written.append(target)
                    while chunk := src.read(MB):
                        size += len(chunk)
                        total += len(chunk)
                        if size > info.file_size or total > max_total_bytes:
                            raise ArchiveError(f"{info.filename} unpacks to more bytes than the zip declares; "
                                               "it was not extracted.")
                        out.write(chunk)
                os.chmod(target, 0o644)
        except ArchiveError:
            _cleanup(dest, created, written)
            raise
        except zipfile.BadZipFile as err:
            _cleanup(dest, created, written)
            raise ArchiveError(f"The zip is damaged or inconsistent ({err}); it was not extracted.") from err
        except (OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as err:
            _cleanup(dest, created, written)
            # Never str(err) of an OSError: it names the server's destination path.
            why = (err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__).rstrip(".")
            where = f" at {_shown(info.filename)}" if info is not None else ""
            raise ArchiveError(f"The zip could not be extracted{where} ({why.lower()}).") from err
    return _dataset_root(dest)


def _cleanup(dest: Path, created: bool, written: list[Path]) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for p in written:
        p.unlink(missing_ok=True)


def zip_members(data: bytes, max_total_bytes: int = 512 * MB, max_files: int = 2048, max_ratio: float = 100
                ) -> list[tuple[str, bytes]]:
    """The files of a zip (bytes) in memory, as (path inside the zip, bytes), after the same checks as
    extract_zip (paths, links, encryption, counts, declared and actual sizes, inflation ratio); ArchiveError
    otherwise. Nothing is written to disk."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as err:
        raise ArchiveError("The upload is not a readable zip file.") from err
    out: list[tuple[str, bytes]] = []
    total = 0
    with zf:
        entries = _check(zf.infolist(), max_total_bytes, max_files, max_ratio, len(data))
        try:
            for info, parts in entries:
                if info.is_dir():
                    continue
                with zf.open(info) as src:
                    chunk = src.read(info.file_size + 1)
                if len(chunk) > info.file_size:
                    raise ArchiveError(f"{info.filename} unpacks to more bytes than the zip declares; it was not read.")
                total += len(chunk)
                if total > max_total_bytes:
                    raise ArchiveError(f"The zip unpacks to more than {max_total_bytes / MB:,.0f} MB.")
                out.append(("/".join(parts), chunk))
        except zipfile.BadZipFile as err:
            raise ArchiveError("The zip is damaged or inconsistent; it was not read.") from err
        except (OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as err:
            raise ArchiveError(f"The zip could not be read ({type(err).__name__}).") from err
    return out
