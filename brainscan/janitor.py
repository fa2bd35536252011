"""Disk janitor for runs/ (and runs/uploads/): leftovers of killed saves, old uploads and runs, a size cap.

Called by the Train page (at most once a minute per server process) and by ``python -m brainscan janitor``.
Never touches a run that is running or queued, nor an upload such a run trains on. What it does:

1. leftovers of a kill in the middle of a save (brainscan.runfolder.KILLED_SAVE_PATTERNS: ``.model-new*``,
   ``.*.tmp-*``, ``.*.new-*``, ``.*.old-*`` inside runs); a run folder without card.json that no longer runs
   loses its half-moved model files;
2. with ``max_age_s``: uploads and finished/failed/stopped runs older than that are removed;
3. with ``max_total_mb``: the oldest removable entries go until runs/ (uploads included) fits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from brainscan.modelfolder import read_json
from brainscan.runfolder import CONFIG_FILE, UPLOADS, read_status, remove_killed_save

PROTECTED_STATES = ("running", "queued")


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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _state(run_dir: Path) -> str:
    """The run's state, with a 'running' run whose process is gone counted as not running."""
    from brainscan.runs import pid_alive

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


def sweep(runs_dir: str | os.PathLike, max_age_s: float | None = None, max_total_mb: float | None = None,
          now: float | None = None) -> Report:
    """Clean runs_dir as described in the module docstring; returns what was removed."""
    root = Path(runs_dir)
    report = Report()
    if not root.is_dir():
        return report
    now = time.time() if now is None else now
    protected: set[Path] = set()
    candidates: list[tuple[float, Path]] = []
    for entry in root.iterdir():
        if entry.name.startswith(".") or entry.name == UPLOADS or not entry.is_dir():
            continue
        state = _state(entry)
        if state in PROTECTED_STATES:
            protected.add(entry.resolve())
            data = (read_json(entry / CONFIG_FILE).get("data") or "")
            if data:
                protected.add(Path(data).resolve())
            continue
        report.leftovers += [str(p) for p in remove_killed_save(entry)]
        candidates.append((_age_stamp(entry), entry))
    uploads = root / UPLOADS
    if uploads.is_dir():
        for entry in uploads.iterdir():
            candidates.append((_age_stamp(entry), entry))

    def in_use(p: Path) -> bool:
        rp = p.resolve()
        return any(q == rp or q.is_relative_to(rp) for q in protected)

    candidates = [(t, p) for t, p in candidates if not in_use(p)]
    candidates.sort(key=lambda tp: tp[0])
    kept: list[tuple[float, Path]] = []
    for stamp, path in candidates:
        if max_age_s is not None and now - stamp > max_age_s:
            size = tree_bytes(path)
            _remove(path)
            report.removed.append(str(path))
            report.freed_bytes += size
        else:
            kept.append((stamp, path))
    total = tree_bytes(root)
    if max_total_mb is not None:
        budget = max_total_mb * 2**20
        for _, path in kept:  # oldest first
            if total <= budget:
                break
            size = tree_bytes(path)
            _remove(path)
            report.removed.append(str(path))
            report.freed_bytes += size
            total -= size
    report.total_bytes = total
    return report


_LAST: dict[str, float] = {}


def sweep_now_and_then(runs_dir: str | os.PathLike, max_age_s: float | None, max_total_mb: float | None,
                       every_s: float = 60.0) -> Report | None:
    """sweep() at most once per every_s seconds per folder in this process (for pages that rerun often)."""
    key = str(Path(runs_dir).resolve())
    now = time.monotonic()
    if now - _LAST.get(key, -1e18) < every_s:
        return None
    _LAST[key] = now
    return sweep(runs_dir, max_age_s, max_total_mb)
