"""The prepare step gives the same splits, inputs, card data and log lines as before the one-pipeline refactor
(issue 19): a folder dataset (flat, and with Training/Testing) and a small recipe, each with the options that
draw random numbers (--max-images, --stripped, --extra-train, --holdout-institution, --guide-cams).

tests/expected/prepare_before_refactor.json was written by the code before the refactor (commit fad66bf) with
BRAINSCAN_RECORD_PREPARE=1; the folder splits are also spelled out below, checked by hand: near-duplicate
copies stay on one side, the Testing copy of a Training image leaves the test set, the unreadable file is left out.
The one edit since: the card's sampling note names brainscan.training.sampling.sampling_weights, the module it
moved to (it named the same function in brainscan/training/sources.py, which is gone).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

EXPECTED = Path(__file__).parent / "expected" / "prepare_before_refactor.json"
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def _flat(root: Path) -> Path:
    """20 phantoms (5 per class), an exact copy of glioma_000 and one file that is not an image."""
    from brainscan.scans.synthetic import write_dataset

    write_dataset(root, per_class=5, size=48, classes=CLASSES)
    shutil.copy(root / "glioma" / "glioma_000.png", root / "glioma" / "glioma_copy.png")
    (root / "notumor" / "broken.png").write_bytes(b"not an image")
    return root


def _official(root: Path) -> Path:
    """Training: 5 per class; Testing: 3 per class (other seeds) and a copy of Training/notumor/notumor_000."""
    from brainscan.scans.synthetic import write_dataset

    write_dataset(root / "Training", per_class=5, size=48, classes=CLASSES)
    write_dataset(root / "Testing", per_class=3, size=48, classes=CLASSES, seed=50)
    shutil.copy(root / "Training" / "notumor" / "notumor_000.png", root / "Testing" / "notumor" / "dup.png")
    return root


def _extra(root: Path, flat: Path) -> Path:
    """--extra-train: copies of two images of the flat set and two new glioma phantoms."""
    from brainscan.scans.synthetic import phantom

    (root / "glioma").mkdir(parents=True)
    for name in ("glioma_001.png", "glioma_004.png"):
        shutil.copy(flat / "glioma" / name, root / "glioma" / f"copy_{name}")
    for k in range(2):
        img, _ = phantom(48, lesion=True, seed=900 + k)
        cv2.imwrite(str(root / "glioma" / f"new_{k}.png"), np.rint(img * 255).astype(np.uint8))
    return root


def _recipe(tmp: Path) -> tuple[Path, Path]:
    import test_sources

    test_sources.RNG = np.random.default_rng(1234)  # make_data draws its noise images from this generator
    return test_sources.make_data(tmp)


class _Model:
    def count_params(self) -> int:
        return 1


def _digest(x: np.ndarray) -> list:
    return [list(x.shape), round(float(np.asarray(x, np.float64).sum()), 3)]


def _snapshot(cfg, base: Path, capsys) -> dict:
    """What the prepare step hands on, in a form that does not depend on its types."""
    from brainscan.training import run as run_mod

    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True)
    capsys.readouterr()
    data = run_mod.prepare(cfg, run_dir)
    logs = capsys.readouterr().out
    metrics = {"val": {"n": 1, "accuracy": 0.5, "ece": 0.1, "ece_uncalibrated": 0.2}}
    card = run_mod.model_card(cfg, run_dir, data, _Model(), {}, 0.0, 0.99, 1.0, metrics)
    out = {
        "classes": list(data.classes),
        "split_json": json.loads((run_dir / "split.json").read_text()),
        "arrays": {k: {"x": _digest(x), "y": np.asarray(y).tolist()} for k, (x, y) in data.arrays.items()},
        "x_strip": None if data.x_strip is None else _digest(data.x_strip),
        "card": {"training_data": card["training_data"], "split": card["split"]},
        "logs": [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line) for line in logs.splitlines()],
    }
    if cfg.recipe:
        out["weights"] = [round(float(w), 6) for w in data.weights]
        out["items"] = {k: [os.path.relpath(it.path, base) for it in v] for k, v in data.items.items()}
    if cfg.guide_cams:
        out["guidance"] = {"masks": _digest(data.guidance.masks), "has_mask": data.guidance.has_mask.tolist()}
    text = json.dumps(out, sort_keys=True)
    return json.loads(text.replace(str(base.resolve()), "<tmp>").replace(str(base), "<tmp>"))


def _summary(folder: Path, base: Path) -> dict:
    from brainscan.scans.summary import dataset_summary

    text = json.dumps(dataset_summary(folder), sort_keys=True)
    return json.loads(text.replace(str(base.resolve()), "<tmp>").replace(str(base), "<tmp>"))


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads(EXPECTED.read_text()) if EXPECTED.is_file() else {}


CASES = ["flat", "flat_capped_stripped_extra", "official", "official_capped", "recipe",
         "recipe_holdout_capped_stripped_guided"]


def _case(name: str, tmp: Path):
    from brainscan.config import TrainConfig

    if name.startswith("recipe"):
        root, recipe = _recipe(tmp)
        extra = dict(holdout_institution="B", max_images=10, stripped=0.5, guide_cams=1.0, seed=2) \
            if name != "recipe" else {}
        return TrainConfig(data=str(root), recipe=str(recipe), out=str(tmp / "run"), img_size=32, **extra)
    if name.startswith("flat"):
        folder = _flat(tmp / "flat")
        extra = dict(seed=3, max_images=8, stripped=0.5, extra_train=str(_extra(tmp / "extra", folder))) \
            if name != "flat" else {}
    else:
        folder = _official(tmp / "official")
        extra = dict(max_images=6) if name != "official" else {}
    return TrainConfig(data=str(folder), out=str(tmp / "run"), img_size=32, **extra)


@pytest.mark.parametrize("name", CASES)
def test_prepare_is_unchanged(name, tmp_path, capsys, expected):
    cfg = _case(name, tmp_path)
    got = _snapshot(cfg, tmp_path, capsys)
    if not cfg.recipe:
        got["summary"] = _summary(Path(cfg.data), tmp_path)
    if os.environ.get("BRAINSCAN_RECORD_PREPARE"):
        EXPECTED.parent.mkdir(exist_ok=True)
        record = {**expected, name: got}
        EXPECTED.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        expected.update(record)
        pytest.skip("recorded")
    assert got == expected[name]


# The folder splits of split.json, checked by hand (train / val / test_dedup / official_test).
HAND_CHECKED = {
    "flat": {
        "train": ["glioma/glioma_000.png", "glioma/glioma_002.png", "glioma/glioma_004.png",
            "glioma/glioma_copy.png", "meningioma/meningioma_002.png", "meningioma/meningioma_003.png",
            "meningioma/meningioma_004.png", "notumor/notumor_002.png", "notumor/notumor_003.png",
            "notumor/notumor_004.png", "pituitary/pituitary_001.png", "pituitary/pituitary_002.png",
            "pituitary/pituitary_004.png"],
        "val": ["glioma/glioma_001.png", "meningioma/meningioma_001.png", "notumor/notumor_000.png",
            "notumor/notumor_001.png", "pituitary/pituitary_000.png", "pituitary/pituitary_003.png"],
        "test_dedup": ["glioma/glioma_003.png", "meningioma/meningioma_000.png"],
        "official_test": [],
    },
    "official": {
        "train": ["Training/glioma/glioma_000.png", "Training/glioma/glioma_001.png",
            "Training/glioma/glioma_002.png", "Training/glioma/glioma_004.png",
            "Training/meningioma/meningioma_001.png", "Training/meningioma/meningioma_002.png",
            "Training/meningioma/meningioma_003.png", "Training/meningioma/meningioma_004.png",
            "Training/notumor/notumor_000.png", "Training/notumor/notumor_001.png",
            "Training/notumor/notumor_002.png", "Training/notumor/notumor_003.png",
            "Training/notumor/notumor_004.png", "Training/pituitary/pituitary_000.png",
            "Training/pituitary/pituitary_001.png", "Training/pituitary/pituitary_002.png",
            "Training/pituitary/pituitary_003.png", "Training/pituitary/pituitary_004.png"],
        "val": ["Training/glioma/glioma_003.png", "Training/meningioma/meningioma_000.png"],
        "test_dedup": ["Testing/glioma/glioma_000.png", "Testing/glioma/glioma_001.png",
            "Testing/glioma/glioma_002.png", "Testing/meningioma/meningioma_000.png",
            "Testing/meningioma/meningioma_001.png", "Testing/meningioma/meningioma_002.png",
            "Testing/notumor/notumor_001.png", "Testing/pituitary/pituitary_000.png",
            "Testing/pituitary/pituitary_001.png", "Testing/pituitary/pituitary_002.png"],
        "official_test": ["Testing/glioma/glioma_000.png", "Testing/glioma/glioma_001.png",
            "Testing/glioma/glioma_002.png", "Testing/meningioma/meningioma_000.png",
            "Testing/meningioma/meningioma_001.png", "Testing/meningioma/meningioma_002.png",
            "Testing/notumor/dup.png", "Testing/notumor/notumor_000.png", "Testing/notumor/notumor_001.png",
            "Testing/notumor/notumor_002.png", "Testing/pituitary/pituitary_000.png",
            "Testing/pituitary/pituitary_001.png", "Testing/pituitary/pituitary_002.png"],
    },
}


@pytest.mark.parametrize("name", sorted(HAND_CHECKED))
def test_folder_split_files(name, tmp_path):
    """Near-duplicate groups of the flat set: {glioma_000, glioma_copy}, {glioma_004, notumor_002..004},
    {notumor_000, notumor_001}, {pituitary_000, pituitary_003}: each on one side. Official set: Testing's dup,
    notumor_000 and notumor_002 share a group with Training/notumor_000, so they are not in test_dedup."""
    from brainscan.training import run as run_mod

    cfg = _case(name, tmp_path)
    Path(cfg.out).mkdir()
    run_mod.prepare(cfg, Path(cfg.out))
    assert json.loads((Path(cfg.out) / "split.json").read_text())["files"] == HAND_CHECKED[name]
