"""Training from several declared sources at once (Model v3). No TensorFlow here.

A *recipe* (TOML, e.g. ``recipes/v3.toml``) names every training source under ``[sources.<name>]``
and every external test set under ``[external.<name>]``; external sets can never become training data
(:func:`load_recipe` and :func:`build_manifest` refuse). From a recipe:

* :func:`load_recipe` parses and validates it (missing folder, CSV column, unmapped label, unknown class:
  a :class:`RecipeError` that says which source and what to fix);
* :func:`build_manifest` lists every image as an :class:`Item` (path, class, source, sequence, declared
  group, institution, mask, official-test flag) and finds near-duplicates (below);
* :func:`brainscan.training.patient_split.grouped_split` splits whole groups into train / val / test (+ an
  optional institution hold-out), stratified so every source (and every source x class x sequence cell,
  where there are enough groups) reaches val and test; the summary is ready for a model card;
* :func:`sampling_weights` gives per-item training weights (equal mass per class, and within a class equal
  mass per (source, sequence) cell), so that no class is tied to one collection.

Near-duplicates. Every image gets the pHash of :func:`brainscan.scans.datasets.perceptual_hash` (cached, keyed by
path + size + mtime). A pair within ``max_bits`` (6 of 64, as :mod:`brainscan.scans.datasets`) is *proposed*:

* same declared group (same patient/case): nothing to do, they are already together;
* same source, and the source's groups are near-duplicate groups (no patient ids, brain-tumor-mri):
  accepted on the hash alone, exactly as :func:`brainscan.scans.datasets.plan_split` does today;
* otherwise accepted only when the pixels agree, Pearson correlation r of the 64x64 grayscale images:
  two sources: r >= ``min_correlation`` (0.95); two declared groups (patients) of one source:
  r >= ``min_correlation_within_source`` (0.99); a blank image (thumbnail std < ``min_std``) confirms
  nothing (66 all-black lgg-tcga slices would otherwise chain 40 patients together).

A perceptual hash alone over-matches MRI slices. Measured on the v3 data (pHash <= 6): 2,194 cross-source
pairs proposed, r at most 0.928, none a copy; between patients of one source, different people reach
r 0.963 (IXI, registered to one template), 0.960 (MS FLAIR) and 0.984 (lgg near-vertex slices). True
copies (navoneel-yes-no images re-exported in brain-tumor-mri, used only to calibrate): 114 of 118 have
a partner at r >= 0.99, 116 at r >= 0.95; re-framed copies can fall lower (one at 0.815).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainscan.errors import RecipeError
from brainscan.scans.datasets import NEAR_DUPLICATE_BITS, _files
from brainscan.training.near_duplicates import (
    HashCache,
    UnionFind,
    cached_hashes,
    cached_thumbs,
    close_pairs,
    pixel_correlation,
)

SEQUENCES = ("t1", "t1c", "t2", "flair", "unknown")
# Folders that are external test sets whatever a recipe says: a recipe cannot list them as training.
ALWAYS_EXTERNAL = frozenset({"brats2013-slices", "navoneel-yes-no"})
MIN_CORRELATION = 0.95  # across sources: unrelated slices measured up to r 0.928, true re-exports mostly > 0.99
MIN_CORRELATION_WITHIN = 0.99  # between two declared groups (patients) of one source: different people reach 0.984
MIN_STD = 2.0  # a 64x64 thumbnail flatter than this (gray levels) is blank: it confirms no pair

_SOURCE_KEYS = {
    "path", "classes", "group", "sequence", "csv", "file_column", "label_column", "splits",
    "institution_column", "mask_column", "min_tumour_pixels", "tumour_pixels_column", "note",
}
_TOP_KEYS = {"name", "description", "classes", "data_root", "near_duplicates", "sources", "external"}


# --- recipe ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupRule:
    """How a source's images are grouped: by a CSV ``column``, by a ``regex`` on the file path
    (relative to the source folder; named group ``group`` or the first group), or by ``near_duplicate``
    (no patient ids: each image is its own group until pHash joins it to others)."""

    kind: str  # "column" | "regex" | "near_duplicate"
    value: str = ""


@dataclass(frozen=True)
class SequenceRule:
    column: str = ""  # CSV column holding t1 / t1c / t2 / flair
    fixed: str = ""  # or one value for the whole source ("unknown" when mixed and unlabelled)


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    classes: dict[str, str]  # source label (CSV value or folder name) -> project class
    group: GroupRule
    sequence: SequenceRule
    csv: str = ""  # CSV file inside path; empty: a folder layout [<split>/]<class>/*
    file_column: str = "file"
    label_column: str = "label"
    splits: dict[str, str] = field(default_factory=dict)  # folder -> "train" | "official_test"
    institution_column: str = ""
    mask_column: str = ""
    tumour_pixels_column: str = ""
    min_tumour_pixels: int = 0  # tumour rows (class other than notumor) with fewer pixels are left out
    note: str = ""


@dataclass(frozen=True)
class External:
    name: str
    path: Path
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path  # the recipe file
    data_root: Path
    classes: tuple[str, ...]
    sources: tuple[Source, ...]
    external: tuple[External, ...]
    max_bits: int = NEAR_DUPLICATE_BITS
    min_correlation: float = MIN_CORRELATION
    min_correlation_within_source: float = MIN_CORRELATION_WITHIN
    min_std: float = MIN_STD

    def source(self, name: str) -> Source:
        """The training source called name; an external set is refused."""
        if name in {e.name for e in self.external} or name in ALWAYS_EXTERNAL:
            raise RecipeError(f"{name} is an external test set; it cannot be used for training.")
        for s in self.sources:
            if s.name == name:
                return s
        raise RecipeError(f"The recipe {self.name} has no source {name} (sources: "
                          f"{', '.join(s.name for s in self.sources)}).")


def _err(source: str, msg: str) -> RecipeError:
    return RecipeError(f"source {source}: {msg}")


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents or a in b.parents


def _parse_group(name: str, raw: object) -> GroupRule:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise _err(name, 'group must be one of { column = "..." }, { regex = "..." } or { near_duplicate = true }.')
    (kind, value), = raw.items()
    if kind == "near_duplicate" and value is True:
        return GroupRule("near_duplicate")
    if kind in ("column", "regex") and isinstance(value, str) and value:
        if kind == "regex":
            try:
                rx = re.compile(value)
            except re.error as exc:
                raise _err(name, f"group regex {value!r} does not compile ({exc}).") from None
            if rx.groups < 1:
                raise _err(name, f"group regex {value!r} has no capturing group.")
        return GroupRule(kind, value)
    raise _err(name, f"group {raw!r} is not understood.")


def _parse_sequence(name: str, raw: object) -> SequenceRule:
    if isinstance(raw, dict) and len(raw) == 1:
        (kind, value), = raw.items()
        if kind == "column" and isinstance(value, str) and value:
            return SequenceRule(column=value)
        if kind == "fixed" and value in SEQUENCES:
            return SequenceRule(fixed=value)
    raise _err(name, f'sequence must be {{ column = "..." }} or {{ fixed = one of {", ".join(SEQUENCES)} }}, '
                     f"not {raw!r}.")


def _parse_source(name: str, raw: dict, root: Path, classes: tuple[str, ...]) -> Source:
    if not isinstance(raw, dict):
        raise _err(name, "must be a table.")
    unknown = set(raw) - _SOURCE_KEYS
    if unknown:
        raise _err(name, f"unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_SOURCE_KEYS))}).")
    for key in ("path", "classes", "group", "sequence"):
        if key not in raw:
            raise _err(name, f"{key} is missing.")
    path = (root / raw["path"]).resolve()
    if not path.is_dir():
        raise _err(name, f"folder {path} does not exist.")
    mapping = raw["classes"]
    if not isinstance(mapping, dict) or not mapping:
        raise _err(name, "classes must map the source's labels to project classes.")
    for label, cls in mapping.items():
        if cls not in classes:
            raise _err(name, f"label {label!r} maps to {cls!r}, which is not a class of the recipe "
                             f"({', '.join(classes)}).")
    splits = raw.get("splits", {})
    for folder, split in splits.items():
        if split not in ("train", "official_test"):
            raise _err(name, f"split {folder} = {split!r}: use \"train\" or \"official_test\".")
    src = Source(
        name=name, path=path, classes=dict(mapping), group=_parse_group(name, raw["group"]),
        sequence=_parse_sequence(name, raw["sequence"]), csv=raw.get("csv", ""),
        file_column=raw.get("file_column", "file"), label_column=raw.get("label_column", "label"),
        splits=dict(splits), institution_column=raw.get("institution_column", ""),
        mask_column=raw.get("mask_column", ""), tumour_pixels_column=raw.get("tumour_pixels_column", ""),
        min_tumour_pixels=int(raw.get("min_tumour_pixels", 0)), note=raw.get("note", ""),
    )
    if src.min_tumour_pixels and not src.tumour_pixels_column:
        raise _err(name, "min_tumour_pixels needs tumour_pixels_column.")
    if src.csv:
        if src.splits:
            raise _err(name, "splits is for folder layouts; a CSV source has none.")
        csv_path = path / src.csv
        if not csv_path.is_file():
            raise _err(name, f"{csv_path} does not exist.")
        with open(csv_path, newline="") as fh:
            header = next(csv.reader(fh), [])
        wanted = [src.file_column, src.label_column, src.institution_column, src.mask_column,
                  src.tumour_pixels_column, src.sequence.column,
                  src.group.value if src.group.kind == "column" else ""]
        for col in filter(None, wanted):
            if col not in header:
                raise _err(name, f"{src.csv} has no column {col!r} (columns: {', '.join(header)}).")
    else:
        for col in (src.institution_column, src.mask_column, src.tumour_pixels_column, src.sequence.column):
            if col:
                raise _err(name, f"column {col!r} needs a CSV (csv = \"...\").")
        if src.group.kind == "column":
            raise _err(name, "group by column needs a CSV; use a regex or near_duplicate.")
        for folder in src.splits or {"": "train"}:
            base = path / folder
            if not base.is_dir():
                raise _err(name, f"split folder {base} does not exist.")
            present = sorted(c.name for c in base.iterdir() if c.is_dir())
            for label in mapping:
                if label not in present:
                    raise _err(name, f"class folder {label!r} is missing in {base} (folders: {', '.join(present)}).")
    return src


def load_recipe(path: str | os.PathLike, data_root: str | os.PathLike | None = None) -> Recipe:
    """Parse and validate a recipe (also lists every source once: missing files, unmapped labels and
    unknown sequences fail here). data_root (default: the recipe's ``data_root``, relative to the
    repository root, i.e. the folder above the recipe's folder) holds the source folders."""
    path = Path(path).resolve()
    if not path.is_file():
        raise RecipeError(f"Recipe {path} does not exist.")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"Recipe {path} is not valid TOML: {exc}.") from None
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise RecipeError(f"Recipe {path}: unknown key(s) {', '.join(sorted(unknown))}.")
    if data_root is None:
        data_root = path.parent.parent / raw.get("data_root", "../shared/data")
    root = Path(data_root).resolve()
    if not root.is_dir():
        raise RecipeError(f"Data root {root} does not exist (set data_root in the recipe or pass one).")
    classes = tuple(raw.get("classes", ()))
    if not classes:
        raise RecipeError(f"Recipe {path}: classes is missing.")
    external = []
    for name, ext in raw.get("external", {}).items():
        if not isinstance(ext, dict) or "path" not in ext:
            raise RecipeError(f"external {name}: path is missing.")
        external.append(External(name, (root / ext["path"]).resolve(), ext.get("note", "")))
    sources_raw = raw.get("sources", {})
    if not sources_raw:
        raise RecipeError(f"Recipe {path}: no [sources.<name>] tables.")
    sources = []
    for name, table in sources_raw.items():
        _refuse_external_name(name, external)
        src = _parse_source(name, table, root, classes)
        _refuse_external_path(src, external)
        _list_source(src, {})  # every row/file readable, every label mapped, every sequence known
        sources.append(src)
    nd = raw.get("near_duplicates", {})
    unknown = set(nd) - {"max_bits", "min_correlation", "min_correlation_within_source", "min_std"}
    if unknown:
        raise RecipeError(f"Recipe {path}: unknown near_duplicates key(s) {', '.join(sorted(unknown))}.")
    return Recipe(str(raw.get("name", path.stem)), path, root, classes, tuple(sources), tuple(external),
                  int(nd.get("max_bits", NEAR_DUPLICATE_BITS)), float(nd.get("min_correlation", MIN_CORRELATION)),
                  float(nd.get("min_correlation_within_source", MIN_CORRELATION_WITHIN)),
                  float(nd.get("min_std", MIN_STD)))


def _refuse_external_name(name: str, external: Iterable[External]) -> None:
    if name in ALWAYS_EXTERNAL or name in {e.name for e in external}:
        raise RecipeError(f"{name} is an external test set; it cannot be used for training.")


def _refuse_external_path(src: Source, external: Iterable[External]) -> None:
    if src.path.name in ALWAYS_EXTERNAL:
        raise _err(src.name, f"{src.path} is the external test set {src.path.name}; it cannot be used for training.")
    for ext in external:
        if _inside(src.path, ext.path):
            raise _err(src.name, f"{src.path} overlaps the external test set {ext.name} ({ext.path}); "
                                 "it cannot be used for training.")


# --- manifest ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    path: str  # absolute
    label: str  # project class
    source: str
    sequence: str  # t1 / t1c / t2 / flair / unknown
    group: str  # declared group, "<source>:<id>" (near-duplicate sources: one per image until joined)
    institution: str = ""
    mask: str = ""  # absolute path of the tumour mask, if any
    official_test: bool = False  # in the source's own Testing folder (brain-tumor-mri)
    duplicate_group: int = -1  # near-duplicate component (over all sources); -1: not computed


class Manifest(list):
    """A list of :class:`Item` with ``stats`` (counts, timing, near-duplicate figures) and ``pairs``
    (the accepted near-duplicate pairs that join two declared groups: (i, j, hamming, r or None))."""

    def __init__(self, items: Iterable[Item] = (), stats: dict | None = None, pairs: list | None = None):
        super().__init__(items)
        self.stats = stats or {}
        self.pairs = pairs or []


def _rel(p: Path, base: Path) -> str:
    return p.relative_to(base).as_posix()


def _list_source(src: Source, stats: dict) -> list[Item]:
    """The items of one source, in file order (no hashing)."""
    items: list[Item] = []
    rx = re.compile(src.group.value) if src.group.kind == "regex" else None

    def group_of(rel: str, row: dict | None) -> str:
        if src.group.kind == "column":
            value = (row or {}).get(src.group.value, "")
            if not value:
                raise _err(src.name, f"{rel}: empty group column {src.group.value!r}.")
            return f"{src.name}:{value}"
        if rx is not None:
            m = rx.search(rel)
            if not m:
                raise _err(src.name, f"group regex {src.group.value!r} does not match {rel}.")
            return f"{src.name}:{m.group('group') if 'group' in rx.groupindex else m.group(1)}"
        return f"{src.name}:{rel}"

    def sequence_of(rel: str, row: dict | None) -> str:
        if src.sequence.fixed:
            return src.sequence.fixed
        value = (row or {}).get(src.sequence.column, "").strip().lower()
        if value not in SEQUENCES:
            raise _err(src.name, f"{rel}: sequence {value!r} is not one of {', '.join(SEQUENCES)}.")
        return value

    dropped = 0
    if src.csv:
        with open(src.path / src.csv, newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                rel = row[src.file_column]
                label = row[src.label_column]
                if label not in src.classes:
                    raise _err(src.name, f"{src.csv} line {n}: label {label!r} is not in the classes mapping "
                                         f"({', '.join(src.classes)}).")
                cls = src.classes[label]
                if src.min_tumour_pixels and cls != "notumor":
                    if int(float(row[src.tumour_pixels_column] or 0)) < src.min_tumour_pixels:
                        dropped += 1
                        continue
                p = src.path / rel
                if not p.is_file():
                    raise _err(src.name, f"{src.csv} line {n} names {rel}, which does not exist.")
                mask = row.get(src.mask_column, "") if src.mask_column else ""
                if mask and not (src.path / mask).is_file():
                    raise _err(src.name, f"{src.csv} line {n}: mask {mask} does not exist.")
                items.append(Item(str(p), cls, src.name, sequence_of(rel, row), group_of(rel, row),
                                  row.get(src.institution_column, "") if src.institution_column else "",
                                  str(src.path / mask) if mask else ""))
    else:
        for folder, split in (src.splits or {"": "train"}).items():
            base = src.path / folder
            for label, cls in src.classes.items():
                for p in _files(base / label):
                    rel = _rel(p, src.path)
                    items.append(Item(str(p), cls, src.name, sequence_of(rel, None), group_of(rel, None),
                                      official_test=split == "official_test"))
    stats.setdefault("left_out_small_tumours", {})[src.name] = dropped
    if not items:
        raise _err(src.name, "no images found.")
    return items


def build_manifest(recipe: Recipe, *, sources: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None,
                   near_duplicates: bool = True, workers: int = 2) -> Manifest:
    """Every image of the recipe's training sources (or of the named ones) as :class:`Item`, with
    near-duplicate components (see the module docstring). cache_dir: where hashes are kept (default
    <repository>/.cache, git-ignored). ``stats`` of the result holds the figures."""
    chosen = [recipe.source(n) for n in sources] if sources is not None else list(recipe.sources)
    stats: dict = {}
    items: list[Item] = []
    for src in chosen:
        _refuse_external_path(src, recipe.external)
        items.extend(_list_source(src, stats))
    stats["items"] = len(items)
    if not near_duplicates:
        return Manifest(items, stats)
    cache = HashCache(cache_dir if cache_dir is not None else recipe.path.parent.parent / ".cache")
    paths = [it.path for it in items]
    hashes = cached_hashes(paths, cache, workers, stats)
    by_hash_kind = {s.name: s.group.kind == "near_duplicate" for s in chosen}
    accepted: list[tuple[int, int, int, float | None]] = []
    candidates: list[tuple[int, int, int]] = []
    counts = Counter()
    for i, j, d in close_pairs(hashes, recipe.max_bits):
        a, b = items[i], items[j]
        if a.group == b.group:
            counts["same_group"] += 1
        elif a.source == b.source and by_hash_kind[a.source]:
            counts["within_source_by_hash"] += 1
            accepted.append((i, j, d, None))
        else:
            candidates.append((i, j, d))
    t0 = time.perf_counter()
    thumbs = cached_thumbs(paths, [k for i, j, _ in candidates for k in (i, j)], cache, workers)
    proposed, confirmed, flat = Counter(), Counter(), Counter()
    r_max: dict[str, float] = {}
    blank = {i for i, t in thumbs.items() if t.std() < recipe.min_std}
    for i, j, d in candidates:
        a, b = items[i], items[j]
        cross = a.source != b.source
        key = f"{'cross_source' if cross else 'within_source'}:{'|'.join(sorted((a.source, b.source)))}"
        proposed[key] += 1
        if i in blank or j in blank:
            flat[key] += 1
            continue
        r = pixel_correlation(thumbs[i], thumbs[j])
        r_max[key] = round(max(r, r_max.get(key, -1.0)), 4)
        if r >= (recipe.min_correlation if cross else recipe.min_correlation_within_source):
            confirmed[key] += 1
            accepted.append((i, j, d, round(r, 4)))
    stats["pixel_check_seconds"] = round(time.perf_counter() - t0, 2)
    cache.save()
    uf = UnionFind(len(items))
    for i, j, _, _ in accepted:
        uf.union(i, j)
    comp = uf.labels()
    items = [Item(**{**it.__dict__, "duplicate_group": c}) for it, c in zip(items, comp, strict=True)]
    stats["near_duplicates"] = {
        "max_bits": recipe.max_bits, "min_correlation": recipe.min_correlation,
        "min_correlation_within_source": recipe.min_correlation_within_source, "min_std": recipe.min_std,
        "pairs_in_same_group": counts["same_group"], "pairs_within_source_by_hash": counts["within_source_by_hash"],
        "proposed": dict(sorted(proposed.items())), "confirmed": dict(sorted(confirmed.items())),
        "proposed_with_a_blank_image": dict(sorted(flat.items())), "max_correlation": dict(sorted(r_max.items())),
        "blank_images_among_proposed": len(blank),
        "components": len(set(comp)),
        "images_in_components_of_2_or_more": sum(c for c in Counter(comp).values() if c > 1),
    }
    return Manifest(items, stats, [p for p in accepted if p[3] is not None])


# --- sampling weights --------------------------------------------------------------------------

def sampling_weights(items: Sequence[Item], cap: float = 10.0) -> np.ndarray:
    """Per-item training weights (mean 1) so that no class is tied to one collection.

    1. Within a class, every (source, sequence) cell gets the same total weight, shared equally by its
       items: a class seen in 4,000 brain-tumor-mri images and 400 IXI images learns from both equally.
    2. No item weighs more than ``cap`` x the median weight of its class (a cell of 5 images is not
       repeated hundreds of times); such a cell simply gets less than its equal share.
    3. Every class then gets the same total weight (classes are balanced whatever their size).
    4. Weights are scaled to mean 1, ready for ``sample_weight`` or as sampling probabilities (w / sum).
    """
    if not items:
        return np.zeros(0)
    labels = [it.label for it in items]
    cells = [(it.label, it.source, it.sequence) for it in items]
    cell_n = Counter(cells)
    cells_in_class = Counter(lab for lab, _, _ in cell_n)
    w = np.array([1.0 / (cells_in_class[c[0]] * cell_n[c]) for c in cells])
    classes = sorted(set(labels))
    lab = np.array(labels)
    for cls in classes:
        m = lab == cls
        w[m] = np.minimum(w[m], cap * np.median(w[m]))
        w[m] /= w[m].sum() * len(classes)
    return w * (len(items) / w.sum())


# --- report ------------------------------------------------------------------------------------

def external_sets(recipe: Recipe) -> list[External]:
    """The recipe's external test sets (for evaluation only)."""
    return list(recipe.external)


def _report(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    import argparse

    from brainscan.training.patient_split import cell_key, grouped_split

    ap = argparse.ArgumentParser(prog="python -m brainscan.training.sources", description="Manifest and split figures.")
    ap.add_argument("recipe")
    ap.add_argument("--data-root")
    ap.add_argument("--cache-dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout", action="append", default=[], help="institution to hold out (repeatable runs)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    recipe = load_recipe(args.recipe, args.data_root)
    t0 = time.perf_counter()
    man = build_manifest(recipe, cache_dir=args.cache_dir, workers=args.workers)
    out(f"manifest: {len(man)} items in {time.perf_counter() - t0:.1f}s")
    out(json.dumps(man.stats, indent=1))
    out(json.dumps(dict(sorted(Counter(cell_key(it) for it in man).items())), indent=1))
    for hold in [None, *args.holdout]:
        sp = grouped_split(man, seed=args.seed, holdout_institution=hold)
        s = sp.summary
        out(f"\n## seed {args.seed}, holdout_institution={hold}")
        out(json.dumps({k: s[k] for k in ("items", "by_source", "groups", "cells_missing",
                                          "official_test_with_near_duplicate_in_training")}, indent=1))
        out(sp.table())
    w = sampling_weights([man[i] for i in grouped_split(man, seed=args.seed).parts["train"]])
    out(f"\nweights (train, no holdout): min {w.min():.3f} median {np.median(w):.3f} max {w.max():.3f}")


if __name__ == "__main__":
    _report(sys.argv[1:])
