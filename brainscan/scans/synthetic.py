"""Synthetic head phantoms for tests, tiny training sets and demos (never real patient data).

A phantom is a dark background, a bright skull ring, grey brain tissue with a little texture,
dark ventricles and, optionally, a bright round lesion whose position is returned.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def phantom(size: int = 64, lesion: bool = False, seed: int = 0, lesion_center: tuple[int, int] | None = None,
            lesion_radius: int | None = None) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Return (float32 size x size image in [0, 1], lesion centre (x, y) or None)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    c = size // 2 + int(rng.integers(-size // 20, size // 20 + 1))
    ax, ay = int(size * rng.uniform(0.34, 0.40)), int(size * rng.uniform(0.40, 0.45))
    cv2.ellipse(img, (c, size // 2), (ax, ay), 0, 0, 360, 0.9, -1)  # skull
    cv2.ellipse(img, (c, size // 2), (ax - max(2, size // 24), ay - max(2, size // 24)), 0, 0, 360, 0.45, -1)  # brain
    vw, vh = max(1, size // 16), max(2, size // 8)
    cv2.ellipse(img, (c - vw, size // 2), (vw, vh), 10, 0, 360, 0.15, -1)  # ventricles
    cv2.ellipse(img, (c + vw, size // 2), (vw, vh), -10, 0, 360, 0.15, -1)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32) * (img > 0)
    centre = None
    if lesion:
        r = lesion_radius or max(2, size // 10)
        if lesion_center is None:
            angle = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(0.3, 0.55)
            lesion_center = (int(c + np.cos(angle) * dist * ax), int(size // 2 + np.sin(angle) * dist * ay))
        cv2.circle(img, lesion_center, r, 0.95, -1)
        centre = lesion_center
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.clip(img, 0, 1), centre


def write_dataset(root: str | Path, per_class: int = 12, size: int = 64,
                  classes: tuple[str, ...] = ("notumor", "tumor"), seed: int = 0) -> Path:
    """Write a tiny <root>/<class>/*.png dataset: 'notumor' phantoms have no lesion, others do."""
    root = Path(root)
    for ci, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img, _ = phantom(size, lesion=name != "notumor", seed=seed + 1000 * ci + i,
                             lesion_radius=max(2, size // (8 + 2 * ci)))
            cv2.imwrite(str(root / name / f"{name}_{i:03d}.png"), np.rint(img * 255).astype(np.uint8))
    return root
