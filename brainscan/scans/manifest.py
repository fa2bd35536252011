"""The manifest: every image of a recipe's training sources (or of a dataset folder, a one-source recipe) as
an :class:`~brainscan.scans.recipe.Item` (path, class, source, sequence, declared group, institution, mask,
official-test flag) with its near-duplicate component over all sources. No TensorFlow here.

Near-duplicates. Every image gets the pHash of :func:`brainscan.scans.near_duplicates.perceptual_hash` (cached,
keyed by path + size + mtime). A pair within ``max_bits`` (6 of 64) is *proposed*:

* same declared group (same patient/case): nothing to do, they are already together;
* same source, and the source's groups are near-duplicate groups (no patient ids: brain-tumor-mri, any
  dataset folder): accepted on the hash alone;
* otherwise accepted only when the pixels agree, Pearson correlation r of the 64x64 grayscale images:
  two sources: r >= ``min_correlation`` (0.95); two declared groups (patients) of one source:
  r >= ``min_correlation_within_source`` (0.99); a blank image (thumbnail std < ``min_std``) confirms
  nothing (66 all-black lgg-tcga slices would otherwise chain 40 patients together).

A perceptual hash alone over-matches MRI slices. Measured on the v3 data (pHash <= 6): 2,194 cross-source
pairs proposed, r at most 0.928, none a copy; between patients of one source, different people reach
r 0.963 (IXI, registered to one template), 0.960 (MS FLAIR) and 0.984 (lgg near-vertex slices). True
copies (navoneel-yes-no images re-exported in brain-tumor-mri, used only to calibrate): 114 of 118 have
a partner at r >= 0.99, 116 at r >= 0.95; re-framed copies can fall lower (one at 0.815).

brainscan.scans.split splits the manifest; brainscan.training.sampling weights its training part.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from brainscan.scans.near_duplicates import (
    HashCache,
    UnionFind,
    cached_hashes,
    cached_thumbs,
    close_pairs,
    pixel_correlation,
)
from brainscan.scans.recipe import Item, Recipe, refuse_external_path, source_items

__all__ = ["Item", "Manifest", "build_manifest"]


class Manifest(list):
    """A list of :class:`Item` with ``stats`` (counts, timing, near-duplicate figures), ``pairs`` (the accepted
    near-duplicate pairs that join two declared groups: (i, j, hamming, r or None)), ``hashes`` (the pHash of
    each item; empty without near-duplicates) and ``unreadable`` ((path, reason) of each file of a dataset
    folder that could not be read and was left out)."""

    def __init__(self, items: Iterable[Item] = (), stats: dict | None = None, pairs: list | None = None,
                 hashes: np.ndarray | None = None, unreadable: list[tuple[str, str]] | None = None):
        super().__init__(items)
        self.stats = stats or {}
        self.pairs = pairs or []
        self.hashes = np.zeros(0, dtype=np.uint64) if hashes is None else hashes
        self.unreadable = unreadable or []


def build_manifest(recipe: Recipe, *, sources: Sequence[str] | None = None, cache_dir: str | os.PathLike | None = None,
                   near_duplicates: bool = True, workers: int = 2) -> Manifest:
    """Every image of the recipe's training sources (or of the named ones) as :class:`Item`, with
    near-duplicate components (see the module docstring). cache_dir: where hashes are kept (default
    <repository>/.cache, git-ignored; a dataset folder: none). ``stats`` of the result holds the figures.
    A dataset folder leaves out the files that cannot be read (``unreadable``); a recipe refuses them."""
    chosen = [recipe.source(n) for n in sources] if sources is not None else list(recipe.sources)
    stats: dict = {}
    items: list[Item] = []
    for src in chosen:
        if not recipe.folder:  # a dataset folder chosen on the Train page is the user's own training data
            refuse_external_path(src, recipe.external)
        items.extend(source_items(src, stats))
    stats["items"] = len(items)
    if not near_duplicates:
        return Manifest(items, stats)
    if cache_dir is None and not recipe.folder:
        cache_dir = recipe.path.parent.parent / ".cache"
    cache = HashCache(cache_dir)
    paths = [it.path for it in items]
    errors: dict[int, str] | None = {} if recipe.folder else None
    hashes = cached_hashes(paths, cache, workers, stats, errors=errors)
    unreadable = [(paths[i], errors[i]) for i in sorted(errors or {})]
    if unreadable:
        keep = [i for i in range(len(items)) if i not in errors]
        items, paths, hashes = [items[i] for i in keep], [paths[i] for i in keep], hashes[keep]
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
    return Manifest(items, stats, [p for p in accepted if p[3] is not None], hashes, unreadable)
