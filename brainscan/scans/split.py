"""Splitting a manifest (brainscan.scans.manifest) by patient and near-duplicate group. No TensorFlow here.

:func:`split_manifest` is the one entry, for a recipe and for a dataset folder (a one-source recipe):

* a recipe: :func:`grouped_split` puts whole merged groups (a declared group, e.g. one patient, joined with
  every near-duplicate component it touches) into train / val / test, plus an optional institution hold-out,
  so that no patient and no near-copy is on both sides (Model v3);
* a dataset folder: :func:`folder_split`, the Train page's split since v1: near-duplicate groups dealt out per
  class with the run's validation and test fractions; with an official Training/Testing split, train and val
  come from Training and the test set is the Testing images whose group has no Training image.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from brainscan.scans.near_duplicates import UnionFind
from brainscan.scans.recipe import Recipe

PARTS = ("train", "val", "test", "institution_holdout", "excluded")
SPLIT_PARTS = ("train", "val", "test")


class Item(Protocol):
    """What the split reads of an item (brainscan.scans.recipe.Item has it)."""

    source: str
    label: str
    sequence: str
    group: str
    duplicate_group: int  # -1: in no near-duplicate component
    institution: str
    official_test: bool


@dataclass
class Split:
    """Index lists into the items. ``parts`` are disjoint and cover every item: train, val, test,
    institution_holdout, excluded (a dataset folder: train, val, test, excluded). ``test_dedup`` is the subset
    of test that comes from an official Testing folder (brain-tumor-mri's clean test images: the v1/v2
    headline set; a dataset folder: its whole test part). ``inputs`` are the parts that become model inputs
    (and split.json's files), in order."""

    parts: dict[str, list[int]]
    test_dedup: list[int]
    groups: list[int]  # merged group (declared group U near-duplicate component) of each item
    summary: dict
    inputs: dict[str, list[int]]

    @property
    def train(self) -> list[int]:
        return self.parts["train"]

    @property
    def val(self) -> list[int]:
        return self.parts["val"]

    @property
    def test(self) -> list[int]:
        return self.parts["test"]

    def table(self) -> str:
        """Markdown table, source x class x sequence rows by part columns (for a model card)."""
        cols = [p for p in PARTS if any(self.summary["cells"].get(p, {}).values())] + ["test_dedup"]
        rows = sorted({k for p in cols for k in self.summary["cells"].get(p, {})})
        out = ["| source | class | sequence | " + " | ".join(cols) + " |", "|---|---|---|" + "---:|" * len(cols)]
        for key in rows:
            src, label, seq = key.split("/")
            out.append(f"| {src} | {label} | {seq} | "
                       + " | ".join(str(self.summary["cells"].get(p, {}).get(key, 0)) for p in cols) + " |")
        out.append("| **all** | | | " + " | ".join(str(self.summary["items"].get(p, 0)) for p in cols) + " |")
        return "\n".join(out)


def split_manifest(recipe: Recipe, items: Sequence[Item], *, seed: int = 0, val_fraction: float = 0.15,
                   test_fraction: float = 0.15, holdout_institution: str | None = None) -> Split:
    """The split of a manifest: a recipe's by patient and near-duplicate group (:func:`grouped_split`, 70/15/15,
    optionally one institution held out), a dataset folder's by near-duplicate group with the run's fractions
    (:func:`folder_split`)."""
    if recipe.folder:
        return folder_split(items, val_fraction, test_fraction, seed)
    return grouped_split(items, seed=seed, holdout_institution=holdout_institution)


def cell_key(it: Item) -> str:
    """The (source, class, sequence) cell of an item, as "source/class/sequence"."""
    return f"{it.source}/{it.label}/{it.sequence}"


def grouped_split(items: Sequence[Item], fractions: tuple[float, float, float] = (0.70, 0.15, 0.15), seed: int = 0,
                  holdout_institution: str | None = None) -> Split:
    """Split whole merged groups (declared group U near-duplicate component, union-find) into parts.

    * holdout_institution: every item of that institution goes to ``institution_holdout``; any other
      item sharing a group with one of them goes to ``excluded``.
    * official Testing items (brain-tumor-mri): those whose merged group holds nothing else go to
      ``test`` (and ``test_dedup``); the others are ``excluded`` (a near-duplicate is in training data).
      Such a source's other items are split between train and val only, in the ratio of the fractions.
    * the rest: first, rarest cell first, each (source, class, sequence) cell receives one group in
      train, then val, then test, while it has unplaced groups; then groups (largest first, ties in a
      seeded random order) go to the part furthest below its target share of the cells they hold.
    Deterministic for a seed.
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise ValueError("fractions must be three non-negative numbers (train, val, test).")
    n = len(items)
    uf = UnionFind(n)
    first: dict[tuple[str, object], int] = {}
    for i, it in enumerate(items):
        for key in (("g", it.group), ("d", it.duplicate_group) if it.duplicate_group >= 0 else None):
            if key is not None:
                j = first.setdefault(key, i)
                if j != i:
                    uf.union(i, j)
    groups = uf.labels()
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)

    where: dict[int, str] = {}
    if holdout_institution is not None:
        insts = sorted({it.institution for it in items if it.institution})
        if holdout_institution not in insts:
            raise ValueError(f"No item has institution {holdout_institution!r} (institutions: {', '.join(insts)}).")
        for idx in members.values():
            if any(items[i].institution == holdout_institution for i in idx):
                for i in idx:
                    where[i] = "institution_holdout" if items[i].institution == holdout_institution else "excluded"
    for idx in members.values():
        if any(i in where for i in idx):
            continue
        official = [i for i in idx if items[i].official_test]
        if official:
            dest = "test" if len(official) == len(idx) else "excluded"
            for i in official:
                where[i] = dest

    target = np.asarray(fractions, dtype=float) / sum(fractions)
    with_official = {it.source for it in items if it.official_test}
    src_target = {}
    for s in {it.source for it in items}:
        t = target.copy()
        if s in with_official:
            t[2] = 0.0
        src_target[s] = t / t.sum() if t.sum() > 0 else t

    # Placeable groups and their cell counts.
    comp_cells: dict[int, Counter] = {}
    for g, idx in members.items():
        free = [i for i in idx if i not in where]
        if free:
            comp_cells[g] = Counter(cell_key(items[i]) for i in free)
    cell_source = {cell_key(it): it.source for it in items}
    total = Counter()
    for cc in comp_cells.values():
        total.update(cc)
    allowed = {g: [k for k in range(3) if all(src_target[cell_source[c]][k] > 0 for c in cc)]
               for g, cc in comp_cells.items()}
    filled = [Counter() for _ in range(3)]
    assign: dict[int, int] = {}
    rng = np.random.default_rng(seed)

    def place(g: int, k: int) -> None:
        assign[g] = k
        filled[k].update(comp_cells[g])

    by_cell: dict[str, list[int]] = defaultdict(list)
    for g in sorted(comp_cells):
        for c in comp_cells[g]:
            by_cell[c].append(g)
    for c in sorted(by_cell, key=lambda c: (len(by_cell[c]), c)):
        for k in range(3):
            if src_target[cell_source[c]][k] <= 0 or filled[k][c] > 0:
                continue
            cand = [g for g in by_cell[c] if g not in assign and k in allowed[g]]
            if not cand:
                continue
            sizes = np.array([sum(comp_cells[g].values()) for g in cand])
            small = [g for g, s in zip(cand, sizes, strict=True) if s <= np.median(sizes)]
            place(small[int(rng.integers(len(small)))], k)
    rest = [g for g in sorted(comp_cells) if g not in assign]
    order = rng.permutation(len(rest))
    rest = [rest[o] for o in order]
    rest.sort(key=lambda g: -sum(comp_cells[g].values()))  # stable: random order among equal sizes
    for g in rest:
        cc = comp_cells[g]
        best, best_score = None, -math.inf
        for k in allowed[g]:
            score = sum(m * (src_target[cell_source[c]][k] - filled[k][c] / total[c]) for c, m in cc.items())
            if score > best_score + 1e-12:
                best, best_score = k, score
        place(g, best)
    for g, k in assign.items():
        for i in members[g]:
            if i not in where:
                where[i] = SPLIT_PARTS[k]
    parts = {p: [] for p in PARTS}
    for i in range(n):
        parts[where[i]].append(i)
    test_dedup = [i for i in parts["test"] if items[i].official_test]
    inputs = {"train": parts["train"], "val": parts["val"], "test": parts["test"], "test_dedup": sorted(test_dedup),
              "institution_holdout": parts["institution_holdout"]}
    return Split(parts, test_dedup, groups, _summary(items, parts, test_dedup, groups, seed, fractions,
                                                     holdout_institution), inputs)


def _summary(items, parts, test_dedup, groups, seed, fractions, holdout) -> dict:
    views = {**parts, "test_dedup": test_dedup}
    cells = {p: dict(sorted(Counter(cell_key(items[i]) for i in idx).items())) for p, idx in views.items()}
    by_source = {p: dict(sorted(Counter(items[i].source for i in idx).items())) for p, idx in views.items()}
    n_groups = {p: dict(sorted(Counter(s for s, _ in {(items[i].source, groups[i]) for i in idx}).items()))
                for p, idx in views.items()}
    missing = []
    for c in sorted({cell_key(it) for it in items}):
        for p in ("train", "val", "test"):
            if c not in cells[p]:
                missing.append(f"{c} not in {p}")
    official_excluded = sum(1 for i in parts["excluded"] if items[i].official_test)
    return {
        "seed": seed, "fractions": list(fractions), "holdout_institution": holdout,
        "items": {p: len(idx) for p, idx in views.items()}, "by_source": by_source, "groups": n_groups,
        "cells": cells, "cells_missing": missing,
        "official_test_with_near_duplicate_in_training": official_excluded,
        "institutions": dict(sorted(Counter(it.institution for it in items if it.institution).items())),
    }


# --- a dataset folder ------------------------------------------------------------------------------

def deal_by_class(labels: Sequence[str], groups: np.ndarray, fractions: tuple[float, ...],
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


def folder_split(items: Sequence[Item], val_fraction: float = 0.15, test_fraction: float = 0.15,
                 seed: int = 0) -> Split:
    """Leakage-free split of a dataset folder's items (each its own declared group; near-duplicate components
    computed), deterministic for a seed.

    With an official Training/Testing split: train/val come from Training (grouped), the test set is
    the Testing images whose near-duplicate group has no Training image (the others are ``excluded``), and
    ``official_test`` keeps every Testing image (leakage included). Without one: a grouped train/val/test split
    of everything.
    """
    groups = np.array([it.duplicate_group for it in items], dtype=np.int64)
    labels = [it.label for it in items]
    official = np.array([it.official_test for it in items], dtype=bool)
    tr_idx, te_idx = np.nonzero(~official)[0], np.nonzero(official)[0]
    if len(tr_idx) and len(te_idx):
        train_groups = set(groups[tr_idx].tolist())
        test = np.array([i for i in te_idx if groups[i] not in train_groups], dtype=np.int64)
        a, b = deal_by_class([labels[i] for i in tr_idx], groups[tr_idx], (1 - val_fraction, val_fraction), seed)
        train, val, official_test = tr_idx[a], tr_idx[b], te_idx
    else:
        train, val, test = deal_by_class(labels, groups, (1 - val_fraction - test_fraction, val_fraction,
                                                          test_fraction), seed)
        official_test = np.array([], dtype=np.int64)
    excluded = np.setdiff1d(official_test, test).astype(np.int64)
    summary = {
        "train": len(train), "val": len(val), "test_dedup": len(test), "official_test": len(official_test),
        "near_duplicate_groups": len(set(groups.tolist())),
        "images_in_groups_of_2_or_more": int(np.sum(np.bincount(groups)[groups] > 1)) if len(groups) else 0,
        "official_test_with_near_duplicate_in_training": int(len(excluded)),
    }
    parts = {"train": train.tolist(), "val": val.tolist(), "test": test.tolist(), "excluded": excluded.tolist()}
    inputs = {"train": parts["train"], "val": parts["val"], "test_dedup": parts["test"],
              "official_test": official_test.tolist()}
    return Split(parts, parts["test"], groups.tolist(), summary, inputs)
