"""Where models live (no TensorFlow): $BRAINSCAN_MODEL, else models/default, else the first models/*/card.json."""

from __future__ import annotations

import os
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
MODEL_ENV = "BRAINSCAN_MODEL"


def find_model_dir() -> Path | None:
    """The default model folder, or None when there is none."""
    env = os.environ.get(MODEL_ENV)
    if env:
        path = Path(env)
        return path.parent if path.is_file() else path
    if (MODELS_DIR / "default" / "card.json").is_file():
        return MODELS_DIR / "default"
    found = sorted(p.parent for p in MODELS_DIR.glob("*/card.json"))
    return found[0] if found else None
