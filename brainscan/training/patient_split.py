"""Splitting a recipe's items by patient and near-duplicate group (Model v3). No TensorFlow here.

:func:`grouped_split` puts whole merged groups (a declared group, e.g. one patient, joined with every
near-duplicate component it touches) into train / val / test, plus an optional institution hold-out, so that
no patient and no near-copy is on both sides; brainscan.training.sources lists the items it splits.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from brainscan.training.near_duplicates import UnionFind

PARTS = ("train", "val", "test", "institution_holdout", "excluded")
SPLIT_PARTS = ("train", "val", "test")


class Item(Protocol):
    """What the split reads of an item (brainscan.training.sources.Item has it)."""

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
    institution_holdout, excluded. ``test_dedup`` is the subset of test that comes from an official
    Testing folder (brain-tumor-mri's clean test images: the v1/v2 headline set)."""

    parts: dict[str, list[int]]
    test_dedup: list[int]
    groups: list[int]  # merged group (declared group U near-duplicate component) of each item
    summary: dict

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
    return Split(parts, test_dedup, groups, _summary(items, parts, test_dedup, groups, seed, fractions,
                                                     holdout_institution))


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
