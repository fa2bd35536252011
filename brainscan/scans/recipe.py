"""Recipes: the training sources of a run and their external test sets (Model v3). No TensorFlow here.

A *recipe* (TOML, e.g. ``recipes/v3.toml``) names every training source under ``[sources.<name>]`` (a folder
layout ``[<split>/]<class>/*`` or a CSV; a class mapping from the source's labels to the project's classes;
how images are grouped, by patient or by near-duplicate; where the sequence is written) and every external
test set under ``[external.<name>]``; external sets can never become training data (:func:`load_recipe` and
brainscan.scans.manifest.build_manifest refuse). :func:`load_recipe` parses and validates it and lists every
source once with :func:`source_items` (missing folder, CSV column, unmapped label, unknown class: a
:class:`RecipeError` that says which source and what to fix).

A dataset folder of the Train page (``train --data DIR``) is a one-source recipe too: :func:`folder_recipe`
wraps what brainscan.scans.datasets.discover found (any layout, class folder synonyms), grouped by
near-duplicate, sequence unknown, so that one manifest-to-split path (brainscan.scans.manifest,
brainscan.scans.split) serves both.
"""

from __future__ import annotations

import csv
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from brainscan.errors import RecipeError
from brainscan.scans.datasets import Dataset, image_files
from brainscan.scans.near_duplicates import NEAR_DUPLICATE_BITS

SEQUENCES = ("t1", "t1c", "t2", "flair", "unknown")
# Folders that are external test sets whatever a recipe says: a recipe cannot list them as training.
ALWAYS_EXTERNAL = frozenset({"brats2013-slices", "navoneel-yes-no"})
MIN_CORRELATION = 0.95  # across sources: unrelated slices measured up to r 0.928, true re-exports mostly > 0.99
MIN_CORRELATION_WITHIN = 0.99  # between two declared groups (patients) of one source: different people reach 0.984
MIN_STD = 2.0  # a 64x64 thumbnail flatter than this (gray levels) is blank: it confirms no pair

_SOURCE_KEYS = {
    "path", "classes", "group", "sequence", "csv", "file_column", "label_column", "splits",
    "institution_column", "mask_column", "min_tumour_pixels", "tumour_pixels_column", "note", "masks", "exclude",
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
    masks: dict[str, str] = field(default_factory=dict)  # image path (relative to path) -> absolute mask path
    exclude: dict[str, str] = field(default_factory=dict)  # image path (relative to path) -> why it is left out
    dataset: Dataset | None = None  # a dataset folder (folder_recipe): its items as datasets.discover found them


@dataclass(frozen=True)
class External:
    name: str
    path: Path
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path  # the recipe file (a dataset folder: the folder)
    data_root: Path
    classes: tuple[str, ...]
    sources: tuple[Source, ...]
    external: tuple[External, ...]
    max_bits: int = NEAR_DUPLICATE_BITS
    min_correlation: float = MIN_CORRELATION
    min_correlation_within_source: float = MIN_CORRELATION_WITHIN
    min_std: float = MIN_STD

    @property
    def folder(self) -> bool:
        """A dataset folder wrapped by :func:`folder_recipe` (the Train page's ``train --data DIR``)."""
        return len(self.sources) == 1 and self.sources[0].dataset is not None

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
        masks=_parse_masks(name, raw.get("masks"), root), exclude=_parse_exclude(name, raw.get("exclude"), path),
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


def _parse_masks(name: str, raw: object, root: Path) -> dict[str, str]:
    """``masks = { csv = "...", image_column = "image", mask_column = "mask" }``: tumour outlines kept in another
    folder (brain-tumor-mri-masks), the CSV relative to the data root, each mask relative to the CSV's folder."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or "csv" not in raw or set(raw) - {"csv", "image_column", "mask_column"}:
        raise _err(name, 'masks must be { csv = "...", image_column = "image", mask_column = "mask" }.')
    table = (root / raw["csv"]).resolve()
    if not table.is_file():
        raise _err(name, f"masks CSV {table} does not exist.")
    image_col, mask_col = raw.get("image_column", "image"), raw.get("mask_column", "mask")
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and (image_col not in rows[0] or mask_col not in rows[0]):
        raise _err(name, f"masks CSV {table.name} needs the columns {image_col!r} and {mask_col!r}.")
    return {r[image_col]: str(table.parent / r[mask_col]) for r in rows if r[mask_col]}


def _parse_exclude(name: str, raw: object, path: Path) -> dict[str, str]:
    """``exclude = { "<image path>" = "why" }``: files of the source that are left out (e.g. a CT scan)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
        raise _err(name, 'exclude must map image paths to the reason, { "Training/x.jpg" = "a CT scan" }.')
    for rel in raw:
        if not (path / rel).is_file():
            raise _err(name, f"exclude names {rel}, which does not exist.")
    return dict(raw)


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
        refuse_external_path(src, external)
        source_items(src, {})  # every row/file readable, every label mapped, every sequence known
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


def refuse_external_path(src: Source, external: Iterable[External]) -> None:
    if src.path.name in ALWAYS_EXTERNAL:
        raise _err(src.name, f"{src.path} is the external test set {src.path.name}; it cannot be used for training.")
    for ext in external:
        if _inside(src.path, ext.path):
            raise _err(src.name, f"{src.path} overlaps the external test set {ext.name} ({ext.path}); "
                                 "it cannot be used for training.")


def folder_recipe(ds: Dataset) -> Recipe:
    """A dataset folder (brainscan.scans.datasets.discover) as a one-source recipe: its classes, no external
    sets, every image its own group until a near-duplicate (by the hash alone) joins it to others, sequence
    unknown; Training/Testing folders, if any, are the official train / test split."""
    root = Path(ds.root)
    src = Source(name=root.name or str(root), path=root, classes={c: c for c in ds.classes},
                 group=GroupRule("near_duplicate"), sequence=SequenceRule(fixed="unknown"), dataset=ds)
    return Recipe(src.name, root, root, tuple(ds.classes), (src,), ())


def external_sets(recipe: Recipe) -> list[External]:
    """The recipe's external test sets (for evaluation only)."""
    return list(recipe.external)


# --- the items of one source ---------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    path: str  # absolute (a dataset folder: as the folder was given)
    label: str  # project class
    source: str
    sequence: str  # t1 / t1c / t2 / flair / unknown
    group: str  # declared group, "<source>:<id>" (near-duplicate sources: one per image until joined)
    institution: str = ""
    mask: str = ""  # absolute path of the tumour mask, if any
    official_test: bool = False  # in the source's own Testing folder (brain-tumor-mri)
    duplicate_group: int = -1  # near-duplicate component (over all sources); -1: not computed


def _rel(p: Path, base: Path) -> str:
    return p.relative_to(base).as_posix()


def source_items(src: Source, stats: dict) -> list[Item]:
    """The items of one source, in file order (no hashing): each label mapped to its project class."""
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
    excluded = 0
    if src.dataset is not None:
        for it in src.dataset.items:
            rel = _rel(Path(it.path), src.path)
            items.append(Item(it.path, src.classes[it.label], src.name, sequence_of(rel, None), group_of(rel, None),
                              official_test=it.official_split == "test"))
    elif src.csv:
        with open(src.path / src.csv, newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                rel = row[src.file_column]
                if rel in src.exclude:
                    excluded += 1
                    continue
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
                for p in image_files(base / label):
                    rel = _rel(p, src.path)
                    if rel in src.exclude:
                        excluded += 1
                        continue
                    items.append(Item(str(p), cls, src.name, sequence_of(rel, None), group_of(rel, None),
                                      mask=src.masks.get(rel, "") if cls != "notumor" else "",
                                      official_test=split == "official_test"))
    stats.setdefault("left_out_small_tumours", {})[src.name] = dropped
    if src.exclude:
        stats.setdefault("excluded", {})[src.name] = {"files": excluded, "why": sorted(set(src.exclude.values()))}
    if not items:
        raise _err(src.name, "no images found.")
    return items
