"""Multi-source recipes, manifests, grouped splits and sampling weights (brainscan.scans.recipe,
brainscan.scans.manifest, brainscan.scans.split, brainscan.training.sampling).

Every image here is a 16x16 PNG made by the test (random noise unless said otherwise)."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from brainscan.scans import datasets as data
from brainscan.scans import manifest, near_duplicates
from brainscan.scans import recipe as recipes
from brainscan.scans import split as patient_split
from brainscan.scans.recipe import Item, RecipeError
from brainscan.training import sampling

RNG = np.random.default_rng(1234)

RECIPE = """
name = "mini"
classes = ["glioma", "meningioma", "notumor", "pituitary"]

[sources.btm]
path = "btm"
splits = { Training = "train", Testing = "official_test" }
classes = { glioma = "glioma", notumor = "notumor" }
group = { near_duplicate = true }
sequence = { fixed = "unknown" }

[sources.lgg]
path = "lgg"
csv = "slices.csv"
classes = { glioma = "glioma", notumor = "notumor" }
group = { column = "case" }
sequence = { column = "sequence" }
institution_column = "institution"
mask_column = "mask"
tumour_pixels_column = "tumour_pixels"
min_tumour_pixels = 150

[sources.ms]
path = "ms"
classes = { notumor = "notumor" }
group = { regex = '_(?P<group>p\\d+)_' }
sequence = { fixed = "flair" }

[external.ext]
path = "ext"
"""


def _png(path, pixels=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels is None:
        pixels = RNG.integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return path


def _twins():
    """Two different 16x16 images with (nearly) the same pHash: a smooth pattern, and the same pattern
    with strong alternating rows (high frequencies pHash ignores)."""
    y, x = np.mgrid[0:16, 0:16]
    base = 128 + 40 * np.sin(x / 3.0) * np.cos(y / 4.0) + 20 * np.cos((x + y) / 5.0)
    return base.astype(np.uint8), np.clip(base + 40 * ((y % 2) * 2 - 1), 0, 255).astype(np.uint8)


def make_data(tmp_path, recipe_text=RECIPE):
    """btm: 6+6 Training, 2+2 Testing (Testing/notumor/tn0 is a copy of Training/notumor/n0);
    lgg: 9 cases (A: 6, B: 3) x {glioma, notumor} x {t1, flair}, plus one t1c glioma slice of 100 px (left
    out); ms: 4 patients x 2 slices; ext: an external yes/no set."""
    root = tmp_path / "data"
    for cls, c in (("glioma", "g"), ("notumor", "n")):
        for k in range(6):
            _png(root / "btm" / "Training" / cls / f"{c}{k}.png")
        for k in range(2):
            _png(root / "btm" / "Testing" / cls / f"t{c}{k}.png")
    shutil.copy(root / "btm/Training/notumor/n0.png", root / "btm/Testing/notumor/tn0.png")
    rows = []
    for inst, n in (("A", 6), ("B", 3)):
        for k in range(n):
            case = f"TCGA_{inst}_{k:03d}"
            for label in ("glioma", "notumor"):
                for seq in ("t1", "flair"):
                    f = f"{label}/{seq}_{case}_01.png"
                    _png(root / "lgg" / f)
                    mask = f"masks/{case}_01.png" if label == "glioma" else ""
                    if mask:
                        _png(root / "lgg" / mask, np.zeros((16, 16)))
                    rows.append([f, label, seq, case, inst, 500 if label == "glioma" else 0, mask])
    _png(root / "lgg/glioma/t1c_TCGA_A_000_02.png")
    rows.append(["glioma/t1c_TCGA_A_000_02.png", "glioma", "t1c", "TCGA_A_000", "A", 100, "masks/TCGA_A_000_01.png"])
    with open(root / "lgg/slices.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "sequence", "case", "institution", "tumour_pixels", "mask"])
        w.writerows(rows)
    for p in range(4):
        for s in range(2):
            _png(root / "ms" / "notumor" / f"flair_p{p}_{s}.png")
    _png(root / "ext/yes/a.png")
    _png(root / "ext/no/b.png")
    recipe = tmp_path / "repo" / "recipes" / "mini.toml"
    recipe.parent.mkdir(parents=True)
    recipe.write_text(recipe_text)
    return root, recipe


@pytest.fixture
def mini(tmp_path):
    root, path = make_data(tmp_path)
    return recipes.load_recipe(path, root), tmp_path / "cache"


# --- recipe ------------------------------------------------------------------------------------

def test_recipe_parsing(mini):
    recipe, _ = mini
    assert [s.name for s in recipe.sources] == ["btm", "lgg", "ms"]
    assert [e.name for e in recipe.external] == ["ext"]
    btm, lgg, ms = recipe.sources
    assert btm.group.kind == "near_duplicate" and btm.sequence.fixed == "unknown"
    assert btm.splits == {"Training": "train", "Testing": "official_test"}
    assert lgg.group == recipes.GroupRule("column", "case") and lgg.sequence.column == "sequence"
    assert lgg.min_tumour_pixels == 150 and lgg.institution_column == "institution"
    assert ms.group.kind == "regex"
    assert recipe.max_bits == 6 and recipe.min_correlation == 0.95


def test_default_data_root_is_relative_to_the_repository(tmp_path):
    root, path = make_data(tmp_path, RECIPE.replace('name = "mini"', 'name = "mini"\ndata_root = "../data"'))
    assert recipes.load_recipe(path).data_root == root.resolve()


def test_shipped_recipe_parses_without_data(tmp_path):
    # The real data may be absent; the file must still be valid TOML naming the expected tables.
    import tomllib
    from pathlib import Path

    raw = tomllib.loads((Path(__file__).parents[1] / "recipes" / "v3.toml").read_text())
    assert set(raw["sources"]) == {"brain-tumor-mri", "lgg-tcga-slices", "ms-ljubljana-slices", "ixi-t1-midaxial"}
    assert set(raw["external"]) == {"brats2013-slices", "navoneel-yes-no"}


@pytest.mark.parametrize("old, new, message", [
    ('path = "lgg"', 'path = "nowhere"', "does not exist"),
    ('group = { column = "case" }', 'group = { column = "patient" }', "no column 'patient'"),
    ('mask_column = "mask"', 'mask_column = "mask_path"', "no column 'mask_path'"),
    ('classes = { notumor = "notumor" }', 'classes = { notumor = "healthy" }', "not a class of the recipe"),
    ('classes = { glioma = "glioma", notumor = "notumor" }\ngroup = { column',
     'classes = { glioma = "glioma" }\ngroup = { column', "label 'notumor' is not in the classes mapping"),
    ('classes = { glioma = "glioma", notumor = "notumor" }\ngroup = { near',
     'classes = { glioma = "glioma", pituitary = "pituitary" }\ngroup = { near', "class folder 'pituitary' is missing"),
    ('group = { near_duplicate = true }', 'group = { column = "case", regex = "x" }', "group must be one of"),
    ('sequence = { fixed = "flair" }', 'sequence = { fixed = "dwi" }', "sequence must be"),
    ('path = "ms"', 'path = "ms"\npth = "ms"', "unknown key(s) pth"),
    ('min_tumour_pixels = 150', 'min_tumour_pixels = 150\nsplits = { a = "train" }', "splits is for folder"),
    ("'_(?P<group>p\\d+)_'", "'_(q\\d+)_'", "does not match"),
    ('name = "mini"', 'name = "mini" nonsense', "not valid TOML"),
])
def test_recipe_errors_name_the_problem(tmp_path, old, new, message):
    assert old in RECIPE
    root, path = make_data(tmp_path, RECIPE.replace(old, new, 1))
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        recipes.load_recipe(path, root)


def test_unknown_sequence_value_in_csv(tmp_path):
    root, path = make_data(tmp_path)
    text = (root / "lgg/slices.csv").read_text().replace(",flair,", ",dwi,", 1)
    (root / "lgg/slices.csv").write_text(text)
    with pytest.raises(RecipeError, match="sequence 'dwi'"):
        recipes.load_recipe(path, root)


def test_missing_recipe_and_data_root(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        recipes.load_recipe(tmp_path / "none.toml")
    _, path = make_data(tmp_path)
    with pytest.raises(RecipeError, match="Data root"):
        recipes.load_recipe(path, tmp_path / "nodata")


# --- external sets -----------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    '[sources.sneaky]\npath = "ext"\nclasses = { yes = "glioma", no = "notumor" }\n'
    'group = { near_duplicate = true }\nsequence = { fixed = "unknown" }\n',
    '[sources.ext]\npath = "ms"\nclasses = { notumor = "notumor" }\n'
    'group = { near_duplicate = true }\nsequence = { fixed = "unknown" }\n',
    '[sources.navoneel-yes-no]\npath = "ms"\nclasses = { notumor = "notumor" }\n'
    'group = { near_duplicate = true }\nsequence = { fixed = "unknown" }\n',
])
def test_external_sets_are_refused_for_training(tmp_path, extra):
    root, path = make_data(tmp_path, RECIPE.replace("[external.ext]", extra + "\n[external.ext]"))
    with pytest.raises(RecipeError, match="external test set"):
        recipes.load_recipe(path, root)


def test_always_external_folder_is_refused_without_an_external_table(tmp_path):
    text = RECIPE.split("[external.ext]")[0].replace('path = "ms"', 'path = "brats2013-slices"')
    root, path = make_data(tmp_path, text)
    (root / "ms").rename(root / "brats2013-slices")
    with pytest.raises(RecipeError, match="external test set brats2013-slices"):
        recipes.load_recipe(path, root)


def test_external_refused_by_name_and_by_a_hand_made_recipe(mini):
    recipe, cache = mini
    with pytest.raises(RecipeError, match="external"):
        recipe.source("ext")
    with pytest.raises(RecipeError, match="external"):
        manifest.build_manifest(recipe, sources=["ext"], cache_dir=cache)
    bad = dataclasses.replace(recipe.sources[2], path=recipe.external[0].path)
    with pytest.raises(RecipeError, match="overlaps the external test set ext"):
        manifest.build_manifest(dataclasses.replace(recipe, sources=(bad,)), cache_dir=cache)
    assert [e.name for e in recipes.external_sets(recipe)] == ["ext"]


# --- manifest ----------------------------------------------------------------------------------

def test_manifest_items(mini):
    recipe, cache = mini
    man = manifest.build_manifest(recipe, cache_dir=cache)
    assert Counter(it.source for it in man) == {"btm": 16, "lgg": 36, "ms": 8}
    assert man.stats["left_out_small_tumours"]["lgg"] == 1
    assert not any("t1c_" in it.path for it in man)
    lgg = [it for it in man if it.source == "lgg"]
    cells = Counter((it.label, it.sequence) for it in lgg)
    assert cells == {(c, s): 9 for c in ("glioma", "notumor") for s in ("t1", "flair")}
    assert all(it.mask.endswith(".png") and os.path.isfile(it.mask) for it in lgg if it.label == "glioma")
    assert all(it.mask == "" for it in lgg if it.label == "notumor")
    assert Counter(it.institution for it in lgg) == {"A": 24, "B": 12}
    assert lgg[0].group == "lgg:TCGA_A_000"
    ms = [it for it in man if it.source == "ms"]
    assert {it.group for it in ms} == {f"ms:p{k}" for k in range(4)} and {it.sequence for it in ms} == {"flair"}
    btm = [it for it in man if it.source == "btm"]
    assert sum(it.official_test for it in btm) == 4 and {it.sequence for it in btm} == {"unknown"}
    # The copy across btm's official split is one near-duplicate group (by hash alone, as in a dataset folder).
    by_name = {os.path.basename(it.path): it for it in btm}
    assert by_name["tn0.png"].duplicate_group == by_name["n0.png"].duplicate_group
    assert by_name["tn1.png"].duplicate_group != by_name["n0.png"].duplicate_group


def test_hash_is_brainscan_data_phash_and_is_cached(mini, tmp_path):
    recipe, cache = mini
    first = manifest.build_manifest(recipe, cache_dir=cache)
    assert first.stats["hashed"] == 60 and first.stats["hash_cache_hits"] == 0
    assert (cache / "sources-phash.json").is_file()
    second = manifest.build_manifest(recipe, cache_dir=cache)
    assert second.stats["hashed"] == 0 and second.stats["hash_cache_hits"] == 60
    assert [it.duplicate_group for it in first] == [it.duplicate_group for it in second]
    touched = first[5].path
    st = os.stat(touched)
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert manifest.build_manifest(recipe, cache_dir=cache).stats["hashed"] == 1
    c = near_duplicates.HashCache(cache)
    assert int(c.hashes[near_duplicates.HashCache.key(touched)], 16) == near_duplicates.perceptual_hash(touched)


DUP_RECIPE = """
classes = ["glioma", "notumor"]
[sources.one]
path = "one"
classes = { notumor = "notumor" }
group = { regex = '^notumor/(\\w+?)_' }
sequence = { fixed = "t1" }
[sources.two]
path = "two"
classes = { notumor = "notumor" }
group = { regex = '^notumor/(\\w+?)_' }
sequence = { fixed = "t1" }
[sources.nd]
path = "nd"
classes = { notumor = "notumor" }
group = { near_duplicate = true }
sequence = { fixed = "unknown" }
"""


def test_cross_source_duplicates_merge_only_when_pixels_agree(tmp_path):
    a, b = _twins()
    ha, hb = (near_duplicates.perceptual_hash(str(_png(tmp_path / n, im))) for n, im in (("a.png", a), ("b.png", b)))
    dist = bin(ha ^ hb).count("1")
    ta, tb = (near_duplicates.thumbnail(str(tmp_path / n)) for n in ("a.png", "b.png"))
    r = near_duplicates.pixel_correlation(ta, tb)
    assert dist <= 6 and r < 0.9, (dist, r)  # the construction: same hash, different image
    root = tmp_path / "data"
    copy = _png(root / "one/notumor/p1_x.png")
    (root / "two/notumor").mkdir(parents=True)
    shutil.copy(copy, root / "two/notumor/q1_copy.png")
    _png(root / "one/notumor/p2_twin.png", a)
    _png(root / "two/notumor/q2_twin.png", b)
    # within a near-duplicate source the hash alone groups, as in a dataset folder (rotated twins: far from a, b)
    _png(root / "nd/notumor/m1.png", np.rot90(a))
    _png(root / "nd/notumor/m2.png", np.rot90(b))
    for name in ("one", "two", "nd"):
        for k in range(2):
            _png(root / name / "notumor" / f"z{k}_filler.png")
    (tmp_path / "r.toml").write_text(DUP_RECIPE)
    recipe = recipes.load_recipe(tmp_path / "r.toml", root)
    man = manifest.build_manifest(recipe, cache_dir=tmp_path / "cache")
    dg = {os.path.relpath(it.path, root): it.duplicate_group for it in man}
    assert dg["one/notumor/p1_x.png"] == dg["two/notumor/q1_copy.png"]
    assert dg["one/notumor/p2_twin.png"] != dg["two/notumor/q2_twin.png"]
    assert dg["nd/notumor/m1.png"] == dg["nd/notumor/m2.png"]
    nd = man.stats["near_duplicates"]
    assert nd["proposed"] == {"cross_source:one|two": 2}  # the copy and the twins
    assert nd["confirmed"] == {"cross_source:one|two": 1}
    assert nd["pairs_within_source_by_hash"] == 1
    assert len(man.pairs) == 1 and man.pairs[0][3] == 1.0
    split = patient_split.grouped_split(man, seed=0)
    part_of = {i: p for p, idx in split.parts.items() for i in idx}
    i, j = (k for k, it in enumerate(man) if it.path.endswith(("p1_x.png", "q1_copy.png")))
    assert part_of[i] == part_of[j]


def test_blank_images_and_close_patients_do_not_merge_groups(tmp_path):
    root = tmp_path / "data"
    _png(root / "one/notumor/p1_blank.png", np.zeros((16, 16)))
    _png(root / "one/notumor/p2_blank.png", np.zeros((16, 16)))
    _png(root / "two/notumor/q1_blank.png", np.zeros((16, 16)))
    _png(root / "nd/notumor/m1.png")
    (tmp_path / "r.toml").write_text(DUP_RECIPE)
    man = manifest.build_manifest(recipes.load_recipe(tmp_path / "r.toml", root), cache_dir=tmp_path / "c")
    assert len({it.duplicate_group for it in man}) == 4
    assert man.stats["near_duplicates"]["proposed_with_a_blank_image"] == {
        "cross_source:one|two": 2, "within_source:one|one": 1}


# --- split -------------------------------------------------------------------------------------

def _sides(split, man, key):
    sides = {}
    for part in ("train", "val", "test", "institution_holdout"):
        for i in split.parts[part]:
            sides.setdefault(key(man[i]), set()).add(part)
    return sides


def test_grouped_split_integrity_coverage_and_official_test(mini):
    recipe, cache = mini
    man = manifest.build_manifest(recipe, cache_dir=cache)
    split = patient_split.grouped_split(man, seed=0)
    assert sorted(i for idx in split.parts.values() for i in idx) == list(range(len(man)))
    for key in (lambda it: it.group, lambda it: it.duplicate_group):
        assert all(len(s) == 1 for s in _sides(split, man, key).values())
    assert split.summary["cells_missing"] == []
    for part in ("val", "test"):
        assert {man[i].source for i in split.parts[part]} == {"btm", "lgg", "ms"}
    # btm: Testing images with no near-duplicate in Training are its test (test_dedup), the copy is excluded.
    names = lambda idx: sorted(os.path.basename(man[i].path) for i in idx)  # noqa: E731
    assert names(split.test_dedup) == ["tg0.png", "tg1.png", "tn1.png"]
    assert names(split.parts["excluded"]) == ["tn0.png"]
    assert not any(man[i].official_test for i in split.parts["train"] + split.parts["val"])
    assert split.summary["items"]["test_dedup"] == 3
    assert split.summary["official_test_with_near_duplicate_in_training"] == 1
    # the same test set as brainscan.scans.split.folder_split on that folder alone (a one-source recipe)
    ds = data.discover(recipe.sources[0].path)
    plan = patient_split.folder_split(manifest.build_manifest(recipes.folder_recipe(ds)))
    assert sorted(os.path.basename(ds.items[i].path) for i in plan.test) == names(split.test_dedup)
    assert "| btm | glioma | unknown |" in split.table()


def test_holdout_institution(mini):
    recipe, cache = mini
    man = manifest.build_manifest(recipe, cache_dir=cache)
    split = patient_split.grouped_split(man, seed=3, holdout_institution="B")
    held = split.parts["institution_holdout"]
    assert len(held) == 12 and {man[i].institution for i in held} == {"B"}
    assert not any(man[i].institution == "B" for p in ("train", "val", "test") for i in split.parts[p])
    for part in ("train", "val", "test"):
        assert "lgg" in {man[i].source for i in split.parts[part]}
    assert all(len(s) == 1 for s in _sides(split, man, lambda it: it.group).values())
    with pytest.raises(ValueError, match="institutions: A, B"):
        patient_split.grouped_split(man, holdout_institution="HT")


def test_split_is_deterministic_for_a_seed(mini):
    recipe, cache = mini
    man = manifest.build_manifest(recipe, cache_dir=cache)
    a, b = patient_split.grouped_split(man, seed=7), patient_split.grouped_split(man, seed=7)
    assert a.parts == b.parts and a.summary == b.summary
    assert any(patient_split.grouped_split(man, seed=s).parts != a.parts for s in range(8))
    assert len(a.parts["train"]) > len(a.parts["val"])


# --- weights -----------------------------------------------------------------------------------

def _item(label, source, sequence, k):
    return Item(f"/x/{source}/{label}/{sequence}/{k}.png", label, source, sequence, f"{source}:{k}")


def test_weights_equal_per_class_and_per_cell():
    items = [_item("notumor", "a", "t1", k) for k in range(30)] + [_item("notumor", "b", "flair", k) for k in range(10)]
    items += [_item("glioma", "a", "t1", k) for k in range(5)]
    w = sampling.sampling_weights(items)
    assert w.mean() == pytest.approx(1.0)
    assert w[:40].sum() == pytest.approx(w[40:].sum())  # each class: 45/2 = 22.5
    assert w[:30].sum() == pytest.approx(w[30:40].sum())  # each notumor cell: 11.25
    assert w[0] == pytest.approx(11.25 / 30) and w[30] == pytest.approx(11.25 / 10) and w[40] == pytest.approx(4.5)


def test_weights_cap_a_tiny_cell():
    # notumor: 9 items in one cell, 1 in another -> raw 1/18 vs 1/2 (9x the class median); cap 3x the median
    # -> 1/6; class mass 9/18 + 1/6 = 2/3. Both classes then get 12/2 = 6: 0.5 each and 1.5; glioma 3 each.
    items = [_item("notumor", "a", "t1", k) for k in range(9)] + [_item("notumor", "b", "t2", 0)]
    items += [_item("glioma", "a", "t1", k) for k in range(2)]
    w = sampling.sampling_weights(items, cap=3.0)
    assert w[:9] == pytest.approx([0.5] * 9) and w[9] == pytest.approx(1.5) and w[10:] == pytest.approx([3.0, 3.0])
    assert sampling.sampling_weights([]).size == 0


def test_import_does_not_import_tensorflow():
    code = ("import sys, brainscan.scans.recipe, brainscan.scans.manifest, brainscan.scans.split, "
            "brainscan.training.sampling, brainscan.training.prepare; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_yes_no_dedup_reference_is_every_recipe_source_and_its_hash_cache(tmp_path):
    """`external` and `uncertainty` drop yes/no images against the same folders, and reuse the recipe's hashes."""
    from brainscan.cli import _dedup_reference, build_parser

    root, recipe = make_data(tmp_path)
    for command in (["external", "--model", "m"], ["uncertainty", "m", "--data", str(root)]):
        args = build_parser().parse_args(command + ["--dedup-against", "extra", "--recipe", str(recipe),
                                                    "--data-root", str(root)])
        against, cache = _dedup_reference(args)
        assert against == ["extra"] + [str((root / s).resolve()) for s in ("btm", "lgg", "ms")]
        assert cache == tmp_path / "repo" / ".cache"
        args = build_parser().parse_args(command + ["--dedup-against", "extra"])
        assert _dedup_reference(args) == (["extra"], None)


def test_pointing_command_compares_heatmap_methods_on_the_validation_patients(tiny_model, tmp_path, capsys):
    """`python -m brainscan pointing` scores every method on the recipe's outlined slices of one split part;
    Grad-CAM twice, alone and with CAM where it is empty (as the app shows it)."""
    import json

    from brainscan.cli import main

    root, recipe = make_data(tmp_path)
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    val = [f"lgg/{seq}" for seq in ("glioma/t1_TCGA_A_000_01.png", "glioma/flair_TCGA_A_000_01.png",
                                     "notumor/t1_TCGA_A_000_01.png")]  # the tumour-free slice has no outline
    (folder / "split.json").write_text(json.dumps({"files": {"val": val, "test": ["lgg/glioma/t1_TCGA_B_000_01.png"]}}))
    assert main(["pointing", str(folder), "--recipe", str(recipe), "--data-root", str(root), "--json",
                 "--methods", "gradcam,cam"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["part"] == "val"
    assert [(r["method"], r["sequence"], r["n"]) for r in out["rows"]] == [
        ("gradcam", "flair", 1), ("gradcam", "t1", 1), ("gradcam (else cam)", "flair", 1),
        ("gradcam (else cam)", "t1", 1), ("cam", "flair", 1), ("cam", "t1", 1)]
    assert all(r["empty_heatmap"] == 0 for r in out["rows"] if r["method"] != "gradcam")
