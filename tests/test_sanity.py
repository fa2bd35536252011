"""The heatmap sanity check (brainscan.evaluation.sanity): model randomisation after Adebayo et al. (2018)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from brainscan.evaluation import sanity

ROOT = Path(__file__).resolve().parents[1]


def test_spearman_basics() -> None:
    a = np.arange(100, dtype=float).reshape(10, 10)
    assert sanity.spearman(a, a ** 3) == pytest.approx(1.0)
    assert sanity.spearman(a, -a) == pytest.approx(-1.0)
    assert sanity.spearman(a, np.zeros_like(a)) == 0.0


def test_read_missing(tmp_path) -> None:
    assert sanity.read(tmp_path) is None


@pytest.mark.slow
def test_randomisation_changes_the_heatmaps_and_the_trained_stage_is_the_scan_paths(tiny_model, tmp_path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    info = sanity.run(str(folder), seed=0)
    got = sanity.read(folder)
    assert got is not None
    stored, arrays = got
    assert stored["stages"][0]["name"] == "trained model" and stored["stages"][-1]["name"] == "all layers"
    n_cases = len(stored["cases"])
    assert arrays["maps"].shape[:2] == (len(stored["stages"]), n_cases)
    assert arrays["inputs"].shape[0] == n_cases
    assert all(v == 1.0 for v in stored["stages"][0]["spearman"])
    # randomising every layer must change the maps (a heatmap that survived would not depend on the model)
    assert stored["stages"][-1]["mean_spearman"] < 0.9
    assert info["layers_with_weights"] > 3
    # the trained model's maps are those of the scan path (LiteRT, closed-form Grad-CAM, CAM where it is empty),
    # case by case
    from brainscan.cam.heatmap import normalize_cam
    from brainscan.runtime.inference import load_model

    lite = load_model(folder)
    assert lite.backend == "litert"
    for i, cls in enumerate(stored["classes"]):
        x = arrays["inputs"][i][..., None].astype(np.float32)
        cam = normalize_cam(lite.cam(x, lite.classes.index(cls), "gradcam"))
        if not cam.any():
            cam = normalize_cam(lite.cam(x, lite.classes.index(cls), "cam"))
        assert np.abs(cam - arrays["maps"][0, i]).max() < 0.02  # float16 storage
    # the model folder's weights are untouched
    from brainscan.runtime.keras_model import load_model as load_keras

    before = load_keras(tiny_model).keras_model.get_weights()
    after = load_keras(folder).keras_model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_the_shipped_models_sanity_check() -> None:
    got = sanity.read(ROOT / "models" / "default")
    if got is None:
        pytest.skip("sanity check not computed for the shipped model yet")
    info, arrays = got
    assert info["stages"][0]["mean_spearman"] == 1.0
    assert arrays["maps"].shape[0] == len(info["stages"])
    assert min(s["mean_spearman"] for s in info["stages"][1:]) < 0.5
