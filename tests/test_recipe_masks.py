"""Recipe additions of model v4: outlines kept in another folder (``masks``), files left out (``exclude``), and
``--train-sequences`` (training and validation on some sequences, every held-out part on all)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from test_sources import RECIPE, _png, make_data

from brainscan.errors import DatasetError
from brainscan.scans import recipe as recipes
from brainscan.scans.recipe import RecipeError

MASKED = RECIPE.replace('''sequence = { fixed = "unknown" }
''', '''sequence = { fixed = "unknown" }
masks = { csv = "btm-masks/masks.csv", image_column = "image", mask_column = "mask" }
exclude = { "Training/glioma/g5.png" = "a CT scan" }
''', 1)


def _masks(root, images):
    with open(root / "btm-masks" / "masks.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "mask", "class"])
        for rel in images:
            _png(root / "btm-masks" / "masks" / rel, np.zeros((16, 16)))
            w.writerow([rel, f"masks/{rel}", "glioma"])


def test_outlines_from_another_folder_and_excluded_files(tmp_path):
    root, path = make_data(tmp_path, MASKED)
    (root / "btm-masks").mkdir()
    _masks(root, ["Training/glioma/g0.png", "Testing/glioma/tg1.png"])
    recipe = recipes.load_recipe(path, root)
    stats: dict = {}
    items = {it.path.split("btm/")[1]: it for it in recipes.source_items(recipe.source("btm"), stats)}
    assert items["Training/glioma/g0.png"].mask == str(root / "btm-masks/masks/Training/glioma/g0.png")
    assert items["Testing/glioma/tg1.png"].mask.endswith("Testing/glioma/tg1.png")
    assert items["Training/glioma/g1.png"].mask == ""  # no outline in the CSV
    assert "Training/glioma/g5.png" not in items  # excluded, and counted with its reason
    assert stats["excluded"]["btm"] == {"files": 1, "why": ["a CT scan"]}


def test_a_missing_masks_csv_or_excluded_file_is_named(tmp_path):
    root, path = make_data(tmp_path, MASKED)
    with pytest.raises(RecipeError, match="masks CSV .*does not exist"):
        recipes.load_recipe(path, root)
    (root / "btm-masks").mkdir()
    _masks(root, [])
    path.write_text(MASKED.replace("g5.png", "g9.png"))
    with pytest.raises(RecipeError, match="exclude names Training/glioma/g9.png"):
        recipes.load_recipe(path, root)


def test_train_sequences_keeps_held_out_parts_whole():
    from brainscan.training.prepare import _only_sequences

    class _Man(list):
        pass

    class _It:
        def __init__(self, seq):
            self.sequence = seq

    man = _Man(_It(s) for s in ["t1c", "flair", "t1", "t1c", "flair", "t1c"])
    parts = {"train": [0, 1, 2], "val": [3, 4], "test": [5, 1], "institution_holdout": [2, 4]}
    kept = _only_sequences(parts, man, "t1c")
    assert kept == {"train": [0], "val": [3], "test": [5, 1], "institution_holdout": [2, 4]}
    assert _only_sequences(parts, man, "") == parts
    with pytest.raises(DatasetError, match="t3"):
        _only_sequences(parts, man, "t1c,t3")
