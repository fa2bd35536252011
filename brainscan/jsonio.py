"""Atomic JSON files: readers (the Train page, the app) never see half a file. No TensorFlow."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def write_json(path: str | os.PathLike, obj: dict) -> None:
    """Write to a hidden temporary file beside path, then rename over it (NumPy values allowed)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_default))
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> dict:
    """The JSON object in path, or {} when it is missing, unreadable or not an object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}
