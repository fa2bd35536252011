"""Dataset folders: their layouts and class folder synonyms. No TensorFlow here.

Layouts: <root>/<class>/* and <root>/{Training,Testing}/<class>/* (any case). Class folder names
are matched case-insensitively through SYNONYMS; a yes/no set becomes tumor vs notumor. Training on a folder
wraps it as a one-source recipe (brainscan.scans.recipe.folder_recipe): its near-duplicates and split come
from brainscan.scans.manifest and brainscan.scans.split, as a recipe's do.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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


def image_files(folder: Path) -> Iterable[Path]:
    """The image files under folder (any depth), sorted; hidden files and folders and symlinks left out."""
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
            items.extend(Item(str(p), label, split) for p in image_files(class_dir))
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
