"""Promotion: a finished run's model copied into models/<name>, complete or not at all."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from brainscan import config, modelfolder
from brainscan.errors import RunError
from brainscan.modelfolder import EXTRA_FILES, MODEL_FILES, write_json
from brainscan.runfolder import slugify
from brainscan.runs.reading import check_owner, run_info


def promote(run_dir: str | os.PathLike, models_dir: str | os.PathLike | None = None, name: str = "default",
            owner: str | None = None) -> Path:
    """Copy a finished run's model into models/<name> (complete folder or nothing; replaces an old one).

    Crash-safe (brainscan.modelfolder.replace_dir): the copy is written and fsynced beside models/<name>, then
    swapped in by one atomic exchange; leftovers of an earlier kill are recovered first. With owner, only that
    session's run."""
    info = run_info(run_dir)
    check_owner(info, owner, "promoted")
    if not info.complete:
        raise RunError(f"Run {info.name} is {info.state}; only a finished run with a saved model can be promoted.")
    if name != slugify(name, "") or name in (".", ".."):
        raise RunError(f"{name!r} is not a usable model folder name (letters, digits, '.', '_' and '-').")
    root = config.models_dir(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    modelfolder.recover_all(root)
    tmp = modelfolder.temp_sibling(root / name, "new")
    tmp.mkdir()
    try:
        for fname in MODEL_FILES + EXTRA_FILES:
            src = info.path / fname
            if src.is_file():
                shutil.copy2(src, tmp / fname)
        missing = [f for f in MODEL_FILES if not (tmp / f).is_file()]
        if missing:
            raise RunError(f"Run {info.name} lacks {', '.join(missing)}; it cannot be promoted.")
        write_json(tmp / "promoted.json", {"run": info.name, "promoted": time.time()})
        os.chmod(tmp, 0o755)
        modelfolder.crash_point("written")
        dst = root / name
        modelfolder.replace_dir(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dst
