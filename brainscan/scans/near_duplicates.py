"""Near-duplicates of images, one module for every caller (the manifest of a recipe or a dataset folder, the
Train page's summary, `train --extra-train`, the external sets): the perceptual hash (pHash), hashes and 64x64
thumbnails cached on disk, pixel correlation, close hash pairs, and the one union-find that groups them.
No TensorFlow here.
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

NEAR_DUPLICATE_BITS = 6  # pHash Hamming distance (of 64 bits) at or below which two images are one group
THUMB_SIDE = 64
CACHE_VERSION = 1


def perceptual_hash(path: str) -> int:
    """64-bit pHash of an image file, as an int. Every decode goes through brainscan.scans.reader (regular files of
    at most 512 MB, 40 MP, inside the shared decode budget); DICOM and other files through brainscan.scans.io.
    Raises brainscan.errors.ScanError for a file that cannot be used."""
    import imagehash
    from PIL import Image

    from brainscan.scans import reader
    from brainscan.scans.io import load_scan, to_uint8

    data = reader.read_file(path)
    label = reader.label_of(path)
    try:
        img = reader.open_image(data, label)
    except reader.ScanError as err:
        if "not an image" not in str(err):
            raise  # too large, too small: the same refusal for DICOM would only cost more
        img = None
    if img is None:
        return int(str(imagehash.phash(Image.fromarray(to_uint8(load_scan(data, label).pixels)))), 16)
    with img:
        full, _ = reader.decode_image(img, label, max_side=reader.HASH_SIDE)
        with reader.BUDGET.reserve(full.size[0] * full.size[1] * 2, label):
            return int(str(imagehash.phash(full.convert("L"))), 16)


def hash_all(paths: list[str], workers: int = 4, errors: dict[int, str] | None = None) -> np.ndarray:
    """pHashes of paths (no cache). With errors (a dict), a file that cannot be used gets hash 0 and errors[index]
    says why; without, the first such file raises its ScanError."""
    return cached_hashes(paths, HashCache(None), workers, errors=errors)


def hamming_matrix_min(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For each hash in a: the smallest Hamming distance to any hash in b and its index."""
    best = np.full(len(a), 65, dtype=np.int64)
    arg = np.zeros(len(a), dtype=np.int64)
    for s in range(0, len(a), chunk):
        d = np.bitwise_count(a[s : s + chunk, None] ^ b[None, :]).astype(np.int64)
        arg[s : s + chunk] = d.argmin(axis=1)
        best[s : s + chunk] = d.min(axis=1)
    return best, arg


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


def cached_hashes(paths: list[str], cache: HashCache, workers: int = 2, stats: dict | None = None,
                  errors: dict[int, str] | None = None) -> np.ndarray:
    """The pHash of every path as uint64, from the cache where it holds them, computed (and cached) otherwise.
    With errors (a dict), a file that cannot be used gets hash 0 (never cached) and errors[index] says why;
    without, the first such file raises its ScanError."""
    stats = {} if stats is None else stats
    keys: list[str | None] = []
    for i, p in enumerate(paths):
        try:
            keys.append(HashCache.key(p))
        except OSError as err:
            if errors is None:
                raise
            keys.append(None)
            errors[i] = str(err) or type(err).__name__
    missing = [i for i, k in enumerate(keys) if k is not None and k not in cache.hashes]

    def one(i: int) -> int | None:
        try:
            return perceptual_hash(paths[i])
        except Exception as err:  # noqa: BLE001 - counted and listed by the caller
            if errors is None:
                raise
            errors[i] = str(err) or type(err).__name__
            return None

    t0 = time.perf_counter()
    if missing:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for i, h in zip(missing, pool.map(one, missing), strict=True):
                if h is not None:
                    cache.hashes[keys[i]] = f"{h:016x}"
        cache.dirty = True
    stats["hash_seconds"] = round(time.perf_counter() - t0, 2)
    stats["hashed"], stats["hash_cache_hits"] = len(missing), sum(k is not None for k in keys) - len(missing)
    return np.array([0 if errors and i in errors else int(cache.hashes[k], 16) for i, k in enumerate(keys)],
                    dtype=np.uint64)


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


def near_duplicate_groups(hashes: np.ndarray, max_bits: int = NEAR_DUPLICATE_BITS) -> np.ndarray:
    """Group ids such that images within max_bits of each other share a group (by the hash alone)."""
    uf = UnionFind(len(hashes))
    for i, j, _ in close_pairs(hashes, max_bits):
        uf.union(i, j)
    return np.array(uf.labels(), dtype=np.int64)
