"""Disk janitor for runs/ (and runs/uploads/): leftovers of killed saves, old uploads and runs, a size cap.

Called by the Train page (at most once a minute per server process), by the queue keeper process (once a minute)
and by ``python -m brainscan janitor``. Never touches a run that is running or queued, nor an upload such a run
trains on. The entries are run folders and single uploads (runs/uploads/<visitor>/<upload>), each with the
visitor it belongs to. What it does:

1. leftovers of a kill in the middle of a save (brainscan.runfolder.KILLED_SAVE_PATTERNS: ``.model-new*``,
   ``.*.tmp-*``, ``.*.new-*``, ``.*.old-*`` inside runs); a run folder without card.json that no longer runs
   loses its half-moved model files;
2. with ``max_age_s``: uploads and finished/failed/stopped runs older than that are removed;
3. with ``max_total_mb``: while runs/ (uploads included) is over it, first the visitors over their share
   (``visitor_mb``) lose their oldest entries, down to their share; then anyone's oldest removable entries go.

make_room() is the share applied to one visitor before an upload: its own oldest entries make room, or the upload
is refused.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from brainscan.modelfolder import read_json
from brainscan.runfolder import CONFIG_FILE, UPLOADS, read_status, remove_killed_save, remove_path

PROTECTED_STATES = ("running", "queued")
OWNER_KEY = 16


@dataclass
class Report:
    leftovers: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    total_bytes: int = 0

    def as_dict(self) -> dict:
        return {"leftovers": self.leftovers, "removed": self.removed, "freed_mb": round(self.freed_bytes / 2**20, 1),
                "total_mb": round(self.total_bytes / 2**20, 1)}


def tree_bytes(path: Path) -> int:
    """Bytes of the files under path (symbolic links are not followed)."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(OSError):
            return path.lstat().st_size
        return 0
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _state(run_dir: Path) -> str:
    """The run's state, with a 'running' run whose process is gone counted as not running."""
    from brainscan.runs.process import pid_alive

    status = read_status(run_dir)
    state = str(status.get("state") or "")
    if state == "running" and not pid_alive(status.get("pid"), run_dir):
        return "crashed"
    return state


def _age_stamp(path: Path) -> float:
    status = read_status(path) if path.is_dir() else {}
    with contextlib.suppress(OSError):
        return float(status.get("ended") or status.get("updated") or path.stat().st_mtime)
    return 0.0


def owner_key(owner: str) -> str:
    """What names a visitor's upload folder (runs/uploads/<key>/): the first 16 characters of its owner id."""
    return (owner or "")[:OWNER_KEY]


@dataclass
class Entry:
    """One removable (or protected) thing in runs/: a run folder or one upload, its owner's key and its age."""

    path: Path
    stamp: float
    owner: str  # owner_key of its visitor; "" when unknown (local mode, a shell)
    protected: bool = False
    _size: int | None = None

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = tree_bytes(self.path)
        return self._size


def entries(root: Path, leftovers: list[str] | None = None) -> list[Entry]:
    """Every run folder and every upload (runs/uploads/<owner>/<upload>) with its owner; the running and queued runs
    and the uploads they train on are marked protected. leftovers: collects what a killed save left (removed)."""
    runs: list[Entry] = []
    data_in_use: set[Path] = set()
    for entry in root.iterdir():
        if entry.name.startswith(".") or entry.name == UPLOADS or not entry.is_dir():
            continue
        state = _state(entry)
        owner = owner_key(str(read_status(entry).get("owner") or ""))
        if state in PROTECTED_STATES:
            data = (read_json(entry / CONFIG_FILE).get("data") or "")
            if data:
                data_in_use.add(Path(data).resolve())
            runs.append(Entry(entry, _age_stamp(entry), owner, protected=True))
            continue
        if leftovers is not None:
            leftovers += [str(p) for p in remove_killed_save(entry)]
        runs.append(Entry(entry, _age_stamp(entry), owner))
    uploads: list[Entry] = []
    folder = root / UPLOADS
    if folder.is_dir():
        for owner_dir in folder.iterdir():
            items = list(owner_dir.iterdir()) if owner_dir.is_dir() and not owner_dir.is_symlink() else [owner_dir]
            key = owner_dir.name if owner_dir.is_dir() else ""
            for item in items:
                rp = item.resolve()
                used = any(q == rp or q.is_relative_to(rp) for q in data_in_use)
                uploads.append(Entry(item, _age_stamp(item), key, protected=used))
    return runs + uploads


def _drop(entry: Entry, report: Report) -> int:
    size = entry.size
    remove_path(entry.path)
    report.removed.append(str(entry.path))
    report.freed_bytes += size
    parent = entry.path.parent
    if parent.parent.name == UPLOADS and parent.is_dir():
        with contextlib.suppress(OSError):
            parent.rmdir()  # the visitor's upload folder, once empty
    return size


def usage(entries_: list[Entry]) -> dict[str, int]:
    """Bytes per owner key (protected entries included)."""
    out: dict[str, int] = {}
    for e in entries_:
        if e.owner:
            out[e.owner] = out.get(e.owner, 0) + e.size
    return out


def sweep(runs_dir: str | os.PathLike, max_age_s: float | None = None, max_total_mb: float | None = None,
          now: float | None = None, visitor_mb: float | None = None) -> Report:
    """Clean runs_dir as described in the module docstring; returns what was removed."""
    root = Path(runs_dir)
    report = Report()
    if not root.is_dir():
        return report
    now = time.time() if now is None else now
    found = entries(root, report.leftovers)
    kept: list[Entry] = []
    for e in sorted(found, key=lambda e: e.stamp):
        if not e.protected and max_age_s is not None and now - e.stamp > max_age_s:
            _drop(e, report)
        else:
            kept.append(e)
    total = tree_bytes(root)
    if max_total_mb is not None and total > max_total_mb * 2**20:
        budget = max_total_mb * 2**20
        removable = [e for e in kept if not e.protected]  # oldest first
        if visitor_mb is not None:  # first the visitors over their share, oldest first, down to their share
            quota = visitor_mb * 2**20
            used = usage(kept)
            for e in removable:
                if total <= budget:
                    break
                if e.owner and used.get(e.owner, 0) > quota:
                    size = _drop(e, report)
                    total -= size
                    used[e.owner] -= size
            removable = [e for e in removable if str(e.path) not in set(report.removed)]
        for e in removable:  # then anyone's oldest finished runs and unused uploads
            if total <= budget:
                break
            total -= _drop(e, report)
    report.total_bytes = total
    return report


def make_room(runs_dir: str | os.PathLike, owner: str, need_bytes: int, visitor_mb: float | None) -> tuple[bool, int]:
    """Before a visitor adds need_bytes (an upload): remove that visitor's oldest finished runs and unused uploads
    until its share (visitor_mb) has room. Returns (whether it fits now, the visitor's bytes after). Never touches a
    waiting or training run, the upload it trains on, or another visitor's files."""
    root = Path(runs_dir)
    key = owner_key(owner)
    if visitor_mb is None or not root.is_dir():
        return True, 0
    quota = visitor_mb * 2**20
    mine = sorted((e for e in entries(root) if e.owner == key), key=lambda e: e.stamp)
    used = sum(e.size for e in mine)
    report = Report()
    for e in mine:
        if used + need_bytes <= quota:
            break
        if not e.protected:
            used -= _drop(e, report)
    return used + need_bytes <= quota, used


_LAST: dict[str, float] = {}


def sweep_now_and_then(runs_dir: str | os.PathLike, max_age_s: float | None, max_total_mb: float | None,
                       every_s: float = 60.0, visitor_mb: float | None = None) -> Report | None:
    """sweep() at most once per every_s seconds per folder in this process (for pages that rerun often)."""
    key = str(Path(runs_dir).resolve())
    now = time.monotonic()
    if now - _LAST.get(key, -1e18) < every_s:
        return None
    _LAST[key] = now
    return sweep(runs_dir, max_age_s, max_total_mb, visitor_mb=visitor_mb)
