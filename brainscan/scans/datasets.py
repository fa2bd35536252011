"""Datasets from folder layouts, near-duplicate groups and leakage-free splits. No TensorFlow here.

Layouts: <root>/<class>/* and <root>/{Training,Testing}/<class>/* (any case). Class folder names
are matched case-insensitively through SYNONYMS; a yes/no set becomes tumor vs notumor.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainscan.errors import DatasetError  # noqa: F401 - raised here, caught by callers as datasets.DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".dcm", ".dicom", ""}
SYNONYMS = {
    "no": "notumor", "no_tumor": "notumor", "notumor": "notumor", "normal": "notumor",
    "no tumor": "notumor", "healthy": "notumor",
    "yes": "tumor", "tumor": "tumor", "tumour": "tumor",
    "glioma": "glioma", "glioma_tumor": "glioma",
    "meningioma": "meningioma", "meningioma_tumor": "meningioma",
    "pituitary": "pituitary", "pituitary_tumor": "pituitary",
}
SPLIT_NAMES = {"training": "train", "train": "train", "testing": "test", "test": "test"}
NEAR_DUPLICATE_BITS = 6  # pHash Hamming distance (of 64 bits) at or below which two images are one group


@dataclass(frozen=True)
class Item:
    path: str
    label: str
    official_split: str  # "train", "test" or "" when the folder has no split


@dataclass(frozen=True)
class Dataset:
    root: str
    items: tuple[Item, ...]
    classes: tuple[str, ...]

    @property
    def labels(self) -> list[str]:
        return [it.label for it in self.items]

    def counts(self) -> dict[str, int]:
        c = Counter(self.labels)
        return {k: c.get(k, 0) for k in self.classes}

    def without(self, drop: Iterable[int]) -> Dataset:
        """The dataset without the items at these indices (e.g. files that could not be read)."""
        gone = set(drop)
        return Dataset(self.root, tuple(it for i, it in enumerate(self.items) if i not in gone), self.classes)

    @property
    def is_binary(self) -> bool:
        return set(self.classes) == {"notumor", "tumor"}


def canonical_class(folder: str) -> str | None:
    return SYNONYMS.get(folder.strip().lower().replace("-", "_"))


def _class_dirs(folder: Path) -> dict[Path, str]:
    found = {}
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.is_symlink():
            label = canonical_class(child.name)
            if label:
                found[child] = label
    return found


def _files(folder: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and not p.is_symlink():
                yield p


def discover(root: str | os.PathLike, min_classes: int = 2) -> Dataset:
    """Find the images and their classes under root (see the module docstring for layouts).
    min_classes=1 accepts a one-class folder (extra training images of a single class)."""
    root_path = Path(root)
    shown = root_path.name or str(root)  # messages name the folder, never its place on the server
    try:
        if not root_path.is_dir():
            raise OSError
        splits = {c: SPLIT_NAMES[c.name.lower()] for c in root_path.iterdir()
                  if c.is_dir() and c.name.lower() in SPLIT_NAMES}
    except OSError:
        raise DatasetError(f"{shown} is not a dataset folder that can be read here.") from None
    items: list[Item] = []
    sources = splits.items() if splits else [(root_path, "")]
    for folder, split in sources:
        for class_dir, label in _class_dirs(folder).items():
            items.extend(Item(str(p), label, split) for p in _files(class_dir))
    if not items:
        raise DatasetError(
            f"No class folders found in {shown}: expected folders such as glioma/, meningioma/, notumor/, "
            "pituitary/ or yes/ and no/, optionally inside Training/ and Testing/.")
    present = sorted({it.label for it in items})
    if set(present) <= {"notumor", "tumor"}:
        classes: tuple[str, ...] = ("notumor", "tumor")
    elif "tumor" in present:
        raise DatasetError("The folder mixes a generic tumor class with tumor types; use one or the other.")
    else:
        classes = tuple(present)
    if len(set(present)) < min_classes:
        raise DatasetError(f"Only one class ({present[0]}) was found in {shown}; at least two are needed.")
    return Dataset(str(root_path), tuple(items), classes)


# --- near-duplicates -------------------------------------------------------------------------

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
    """pHashes of paths. With errors (a dict), a file that cannot be used gets hash 0 and errors[index] says why;
    without, the first such file raises its ScanError."""

    def one(i: int) -> int:
        try:
            return perceptual_hash(paths[i])
        except Exception as err:  # noqa: BLE001 - counted and listed by the caller
            if errors is None:
                raise
            errors[i] = str(err) or type(err).__name__
            return 0

    with ThreadPoolExecutor(workers) as pool:
        return np.array(list(pool.map(one, range(len(paths)))), dtype=np.uint64)


def hamming_matrix_min(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """For each hash in a: the smallest Hamming distance to any hash in b and its index."""
    best = np.full(len(a), 65, dtype=np.int64)
    arg = np.zeros(len(a), dtype=np.int64)
    for s in range(0, len(a), chunk):
        d = np.bitwise_count(a[s : s + chunk, None] ^ b[None, :]).astype(np.int64)
        arg[s : s + chunk] = d.argmin(axis=1)
        best[s : s + chunk] = d.min(axis=1)
    return best, arg


def near_duplicate_groups(hashes: np.ndarray, max_bits: int = NEAR_DUPLICATE_BITS, chunk: int = 1024) -> np.ndarray:
    """Group ids such that images within max_bits of each other share a group (union-find)."""
    n = len(hashes)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for s in range(0, n, chunk):
        d = np.bitwise_count(hashes[s : s + chunk, None] ^ hashes[None, :])
        rows, cols = np.nonzero(d <= max_bits)
        for r, c in zip(rows + s, cols, strict=True):
            if c > r:
                ra, rb = find(int(r)), find(int(c))
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)])


# --- splits ----------------------------------------------------------------------------------

def grouped_split(labels: list[str], groups: np.ndarray, fractions: tuple[float, ...],
                  seed: int = 0) -> list[np.ndarray]:
    """Split indices into len(fractions) parts, whole groups at a time, roughly stratified by class.

    Groups are shuffled per (majority) class and dealt out so that every part gets its share of
    each class; a group never spans two parts.
    """
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    by_group: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(int(g), []).append(i)
    by_class: dict[str, list[int]] = {}
    for g, idx in by_group.items():
        majority = Counter(labels_arr[idx]).most_common(1)[0][0]
        by_class.setdefault(majority, []).append(g)
    parts: list[list[int]] = [[] for _ in fractions]
    target = np.asarray(fractions, dtype=float) / sum(fractions)
    for cls in sorted(by_class):
        gs = by_class[cls]
        rng.shuffle(gs)
        total = sum(len(by_group[g]) for g in gs)
        filled = np.zeros(len(fractions))
        for g in gs:
            # Give the group to the part furthest below its target share of this class.
            k = int(np.argmax(target * total - filled))
            parts[k].extend(by_group[g])
            filled[k] += len(by_group[g])
    return [np.array(sorted(p), dtype=np.int64) for p in parts]


@dataclass
class SplitPlan:
    """Which item goes where, and the leakage figures that justify it."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray  # deduplicated test set (the headline)
    official_test: np.ndarray  # the folder's own Testing split, leakage included (may be empty)
    groups: np.ndarray
    n_groups: int
    official_test_with_train_duplicate: int

    def summary(self) -> dict[str, int]:
        return {
            "train": len(self.train), "val": len(self.val), "test_dedup": len(self.test),
            "official_test": len(self.official_test), "near_duplicate_groups": self.n_groups,
            "images_in_groups_of_2_or_more": int(np.sum(np.bincount(self.groups)[self.groups] > 1)),
            "official_test_with_near_duplicate_in_training": self.official_test_with_train_duplicate,
        }


def plan_split(ds: Dataset, hashes: np.ndarray, val_fraction: float = 0.15, test_fraction: float = 0.15,
               seed: int = 0, max_bits: int = NEAR_DUPLICATE_BITS) -> SplitPlan:
    """Leakage-free split.

    With an official Training/Testing split: train/val come from Training (grouped), the test set is
    the Testing images whose near-duplicate group has no Training image. Without one: a grouped
    train/val/test split of everything.
    """
    groups = near_duplicate_groups(hashes, max_bits)
    split_of = np.array([it.official_split for it in ds.items])
    labels = ds.labels
    tr_idx, te_idx = np.nonzero(split_of == "train")[0], np.nonzero(split_of == "test")[0]
    if len(tr_idx) and len(te_idx):
        train_groups = set(groups[tr_idx].tolist())
        clean = np.array([i for i in te_idx if groups[i] not in train_groups], dtype=np.int64)
        sub_labels = [labels[i] for i in tr_idx]
        a, b = grouped_split(sub_labels, groups[tr_idx], (1 - val_fraction, val_fraction), seed)
        train, val = tr_idx[a], tr_idx[b]
        return SplitPlan(train, val, clean, te_idx, groups, len(set(groups.tolist())),
                         int(len(te_idx) - len(clean)))
    train, val, test = grouped_split(labels, groups, (1 - val_fraction - test_fraction, val_fraction, test_fraction),
                                     seed)
    return SplitPlan(train, val, test, np.array([], dtype=np.int64), groups, len(set(groups.tolist())), 0)
