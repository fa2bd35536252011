"""Near-duplicate machinery shared by the recipe loader (brainscan.training.sources) and the external
evaluation: perceptual hashes and 64x64 thumbnails cached on disk, pixel correlation, close hash pairs,
and union-find for grouping. No TensorFlow here.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from brainscan.scans.datasets import perceptual_hash

THUMB_SIDE = 64
CACHE_VERSION = 1


class HashCache:
    """pHash and 64x64 thumbnails keyed by absolute path + size + mtime, in <cache_dir>/sources-*.{json,npz}."""

    def __init__(self, cache_dir: str | os.PathLike | None):
        self.dir = Path(cache_dir) if cache_dir else None
        self.hashes: dict[str, str] = {}
        self.thumbs: dict[str, np.ndarray] = {}
        self.dirty = False
        if self.dir is None:
            return
        hp, tp = self.dir / "sources-phash.json", self.dir / "sources-thumbs.npz"
        try:
            raw = json.loads(hp.read_text())
            if raw.get("version") == CACHE_VERSION:
                self.hashes = raw["entries"]
        except (OSError, ValueError, KeyError):
            pass
        try:
            with np.load(tp) as z:
                self.thumbs = dict(zip(z["keys"].tolist(), z["thumbs"], strict=True))
        except (OSError, ValueError, KeyError):
            pass

    @staticmethod
    def key(path: str) -> str:
        st = os.stat(path)
        return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"

    def save(self) -> None:
        if self.dir is None or not self.dirty:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "sources-phash.json.tmp"
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": self.hashes}))
        tmp.replace(self.dir / "sources-phash.json")
        if self.thumbs:
            keys = sorted(self.thumbs)
            with open(self.dir / "sources-thumbs.npz.tmp", "wb") as fh:
                np.savez(fh, keys=np.array(keys), thumbs=np.stack([self.thumbs[k] for k in keys]))
            (self.dir / "sources-thumbs.npz.tmp").replace(self.dir / "sources-thumbs.npz")
        self.dirty = False


def thumbnail(path: str, side: int = THUMB_SIDE) -> np.ndarray:
    """side x side uint8 grayscale image (aspect ignored, as pHash does)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L").resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)
    except Exception:  # noqa: BLE001 - DICOM or anything Pillow cannot open
        from brainscan.scans.io import load_scan_path, to_uint8

        g = Image.fromarray(to_uint8(load_scan_path(path).pixels))
        return np.asarray(g.resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)


def pixel_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-size images; 1.0 for two identical constant images, else 0 when flat."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    den = math.sqrt(float(x @ x) * float(y @ y))
    if den == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(x @ y) / den


def cached_hashes(paths: list[str], cache: HashCache, workers: int = 2, stats: dict | None = None) -> np.ndarray:
    """The pHash of every path as uint64, from the cache where it holds them, computed (and cached) otherwise."""
    stats = {} if stats is None else stats
    keys = [HashCache.key(p) for p in paths]
    missing = [i for i, k in enumerate(keys) if k not in cache.hashes]
    t0 = time.perf_counter()
    if missing:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for i, h in zip(missing, pool.map(perceptual_hash, [paths[i] for i in missing]), strict=True):
                cache.hashes[keys[i]] = f"{h:016x}"
        cache.dirty = True
    stats["hash_seconds"] = round(time.perf_counter() - t0, 2)
    stats["hashed"], stats["hash_cache_hits"] = len(missing), len(paths) - len(missing)
    return np.array([int(cache.hashes[k], 16) for k in keys], dtype=np.uint64)


def cached_thumbs(paths: list[str], idx: Iterable[int], cache: HashCache, workers: int = 2) -> dict[int, np.ndarray]:
    """{index: 64x64 thumbnail} for the given indices into paths, through the cache."""
    idx = sorted(set(idx))
    keys = {i: HashCache.key(paths[i]) for i in idx}
    missing = [i for i in idx if keys[i] not in cache.thumbs]
    if missing:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for i, t in zip(missing, pool.map(thumbnail, [paths[i] for i in missing]), strict=True):
                cache.thumbs[keys[i]] = t
        cache.dirty = True
    return {i: cache.thumbs[keys[i]] for i in idx}


def close_pairs(hashes: np.ndarray, max_bits: int, chunk: int = 512) -> Iterable[tuple[int, int, int]]:
    """Every (i, j, distance) with i < j and pHash Hamming distance <= max_bits."""
    for s in range(0, len(hashes), chunk):
        d = np.bitwise_count(hashes[s: s + chunk, None] ^ hashes[None, :])
        rows, cols = np.nonzero(d <= max_bits)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if c > r + s:
                yield r + s, c, int(d[r, c])


class UnionFind:
    """Disjoint sets over 0..n-1; labels() numbers the components in order of first appearance."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True

    def labels(self) -> list[int]:
        roots = [self.find(i) for i in range(len(self.parent))]
        index: dict[int, int] = {}
        return [index.setdefault(r, len(index)) for r in roots]
