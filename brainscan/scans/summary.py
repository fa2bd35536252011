"""What training on a dataset folder would see, before it starts (the Train page's summary), and where
dataset folders are. No TensorFlow here."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path

from brainscan import config
from brainscan.config import resolve_data_path

UNREADABLE_LISTED = 50  # the summary lists this many unreadable files (and counts all)


def _image_sizes(paths: list[str], sample: int) -> dict:
    """Width/height statistics from image headers (Pillow reads only the header; DICOM via brainscan.scans.dicom)."""
    from PIL import Image

    step = max(1, len(paths) // sample) if sample else 1
    picked = paths[::step][:sample]
    sizes: list[tuple[int, int]] = []
    modes: Counter[str] = Counter()
    unreadable = 0
    for p in picked:
        try:
            with Image.open(p) as im:
                sizes.append(im.size)
                modes[im.mode] += 1
        except Exception:  # noqa: BLE001 - DICOM or a broken file
            try:  # the header only, through the bounded reader (a deflated data set is never inflated whole)
                from brainscan.scans.dicom import dicom_size
                from brainscan.scans.reader import read_file

                sizes.append(dicom_size(read_file(p)))
                modes["DICOM"] += 1
            except Exception:  # noqa: BLE001
                unreadable += 1
    out: dict = {"sampled": len(picked), "unreadable": unreadable, "modes": dict(modes)}
    if sizes:
        import numpy as np

        w = np.array([s[0] for s in sizes])
        h = np.array([s[1] for s in sizes])
        out.update(
            width={"min": int(w.min()), "median": int(np.median(w)), "max": int(w.max())},
            height={"min": int(h.min()), "median": int(np.median(h)), "max": int(h.max())},
            most_common=[[f"{a}x{b}", n] for (a, b), n in Counter(sizes).most_common(5)],
            non_square=int(np.sum(w != h)))
    return out


def dataset_summary(root: str | os.PathLike, size_sample: int = 200, val_fraction: float = 0.15,
                    test_fraction: float = 0.15, seed: int = 0) -> dict:
    """What training on root would see: images per class, image sizes, near-duplicates and the split.

    A pure function of the folder's contents (cache it by path). Raises brainscan.scans.datasets.DatasetError.
    The split is the one brainscan.training.prepare makes with the same fractions and seed (before --max-images):
    the folder as a one-source recipe, its manifest, its split.
    """
    import numpy as np

    from brainscan.scans import datasets as data_mod
    from brainscan.scans.manifest import build_manifest
    from brainscan.scans.near_duplicates import NEAR_DUPLICATE_BITS
    from brainscan.scans.recipe import folder_recipe
    from brainscan.scans.split import split_manifest

    ds = data_mod.discover(resolve_data_path(root))
    recipe = folder_recipe(ds)
    man = build_manifest(recipe)
    unreadable = [{"file": os.path.relpath(path, ds.root), "reason": reason} for path, reason in man.unreadable]
    if unreadable and len({it.label for it in man}) < 2:
        raise data_mod.DatasetError(f"{len(unreadable):,} of the images could not be read (for example "
                                    f"{unreadable[0]['file']}: {unreadable[0]['reason']}); too few are left.")
    split = split_manifest(recipe, man, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    group_sizes = np.bincount(split.groups)
    per_split = {}
    for part, idx in split.inputs.items():
        c = Counter(man[i].label for i in idx)
        per_split[part] = {k: c.get(k, 0) for k in ds.classes}
    gone = {path for path, _ in man.unreadable}
    counts = Counter(it.label for it in man)
    by_official: dict[str, dict[str, int]] = {}
    for it in ds.items:
        if it.official_split and it.path not in gone:
            by_official.setdefault(it.official_split, Counter())[it.label] += 1
    return {
        "root": str(ds.root), "n_images": len(man), "classes": list(ds.classes),
        "counts": {k: counts.get(k, 0) for k in ds.classes},
        "binary": ds.is_binary, "official_split": {k: dict(v) for k, v in by_official.items()},
        "image_sizes": _image_sizes([it.path for it in man], size_sample),
        "near_duplicates": {
            "groups_with_2_or_more": int(np.sum(group_sizes >= 2)),
            "images_in_those_groups": int(np.sum(group_sizes[group_sizes >= 2])),
            "largest_group": int(group_sizes.max()) if len(group_sizes) else 0,
            "max_hamming_bits": NEAR_DUPLICATE_BITS,
        },
        "split": split.summary, "split_per_class": per_split,
        "unreadable": unreadable[:UNREADABLE_LISTED], "unreadable_count": len(unreadable),
    }


def find_datasets(roots: list[str | os.PathLike] | None = None, depth: int = 2) -> list[Path]:
    """Folders that look like datasets (class folders, possibly inside Training/Testing) under roots."""
    from brainscan.scans import datasets as data_mod

    roots = roots if roots is not None else [config.SHARED_DATA_DIR]
    found: list[Path] = []

    def looks_like(p: Path) -> bool:
        try:
            kids = [c for c in p.iterdir() if c.is_dir()]
        except OSError:
            return False
        classes = {data_mod.canonical_class(c.name) for c in kids} - {None}
        splits = [c for c in kids if c.name.lower() in data_mod.SPLIT_NAMES]
        return len(classes) >= 2 or any(looks_like(s) for s in splits)

    def walk(p: Path, level: int) -> None:
        if looks_like(p):
            found.append(p)
            return
        if level < depth:
            with contextlib.suppress(OSError):
                for c in sorted(p.iterdir()):
                    if c.is_dir() and not c.is_symlink() and not c.name.startswith("."):
                        walk(c, level + 1)

    for r in roots:
        if Path(r).is_dir():
            walk(Path(r), 0)
    return found
