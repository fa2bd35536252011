"""Test-time-augmentation uncertainty (brainscan.runtime.uncertainty) and deferral (brainscan.evaluation.deferral)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brainscan.evaluation import deferral
from brainscan.runtime import uncertainty

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "default"


def test_views_are_the_input_flipped_shifted_and_scaled() -> None:
    x = np.zeros((64, 64, 1), np.float32)
    x[10:20, 5:15] = 1.0
    v = uncertainty.views(x)
    assert v.shape == (len(uncertainty.VIEWS), 64, 64, 1) and v.dtype == np.float32
    assert np.allclose(v[0], x)  # the first view is the scan as the model sees it
    assert np.allclose(v[1], x[:, ::-1])
    shift = round(uncertainty.SHIFT * 64)
    assert np.allclose(v[2][:, shift:], x[:, :-shift], atol=1e-5)  # shifted right
    assert all(not np.allclose(v[0], v[k]) for k in range(1, len(v)))


def test_scores_on_constructed_probabilities() -> None:
    agree = np.tile([[0.9, 0.05, 0.05]], (8, 1))[None]
    torn = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05]] * 4)[None]
    for name, f in uncertainty.SIGNALS.items():
        assert f(agree).shape == (1,)
        if name != "confidence":  # the one-view baseline only sees the first view
            assert f(torn)[0] > f(agree)[0], name
    assert uncertainty.tta_spread(agree)[0] == pytest.approx(0.0)
    assert uncertainty.tta_spread(torn)[0] == pytest.approx(0.4)
    assert uncertainty.confidence(torn)[0] == pytest.approx(0.1)


def test_coverage_curve_and_threshold() -> None:
    correct = np.array([1, 1, 1, 0, 1, 0, 0, 1], bool)
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    c = deferral.coverage_curve(correct, score, points=3)
    assert c["coverage"][0] == 1.0 and c["accuracy"][0] == pytest.approx(5 / 8)
    assert c["accuracy_all"] == pytest.approx(5 / 8)
    # answering only the most certain half: 3 of 4 right
    t = deferral.at_threshold(correct, score, 0.4, flagged=np.array([0, 0, 1, 0, 0, 0, 0, 0], bool))
    assert t["coverage"] == 0.5 and t["accuracy_answered"] == 0.75 and t["accuracy_deferred"] == 0.5
    assert t["coverage_with_unfamiliar_check"] == 0.375
    assert t["accuracy_answered_with_unfamiliar_check"] == pytest.approx(2 / 3)
    # a perfect ranking has a smaller area under the risk-coverage curve than a reversed one
    assert deferral.coverage_curve(correct, -correct.astype(float))["aurc"] < \
        deferral.coverage_curve(correct, correct.astype(float))["aurc"]


def test_settings_missing_or_broken(tmp_path) -> None:
    assert uncertainty.read_settings(tmp_path) is None
    (tmp_path / uncertainty.FILE).write_text("{not json")
    assert uncertainty.read_settings(tmp_path) is None
    (tmp_path / uncertainty.FILE).write_text(json.dumps({"signal": "nonsense", "threshold": 0.1}))
    assert uncertainty.read_settings(tmp_path) is None


def test_assess_with_and_without_a_threshold(tiny_model) -> None:
    from brainscan.runtime.inference import load_model

    model = load_model(tiny_model)
    x = np.random.default_rng(0).random((model.size, model.size, 1), dtype=np.float32)
    u = uncertainty.assess(model, x, None)
    assert u.threshold is None and not u.needs_human and len(u.view_labels) == len(uncertainty.VIEWS)
    assert u.signal == "tta_spread" and 0 <= u.score <= 1
    low = uncertainty.assess(model, x, {"signal": "tta_confidence", "threshold": -1.0})
    assert low.needs_human  # every answer is above a negative threshold
    assert not uncertainty.assess(model, x, {"signal": "tta_confidence", "threshold": 2.0}).needs_human


def test_the_shipped_models_threshold_was_chosen_on_validation() -> None:
    settings = uncertainty.read_settings(SHIPPED)
    if settings is None:
        pytest.skip("uncertainty.json not computed for the shipped model yet")
    val = settings["sets"]["val"]
    assert settings["signal"] == min(settings["candidates_val_aurc"], key=settings["candidates_val_aurc"].get)
    assert val["at_threshold"]["coverage"] == pytest.approx(settings["target_coverage_on_val"], abs=0.02)
    for s in settings["sets"].values():
        acc = s["curve"]["accuracy"]
        assert len(acc) == len(s["curve"]["coverage"]) and s["curve"]["coverage"][0] == 1.0
    assert "test_dedup" in settings["sets"]


@pytest.mark.slow
def test_uncertainty_command_writes_the_folder(tiny_model, tiny_dataset, tmp_path) -> None:
    """End to end on the tiny model: its split's files are under tiny_dataset."""
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    from brainscan.cli import main

    assert main(["uncertainty", str(folder), "--data", tiny_dataset]) == 0
    s = uncertainty.read_settings(folder)
    assert s is not None and set(s["sets"]) == {"val", "test_dedup"}
    assert json.loads((folder / "card.json").read_text())["uncertainty"]["signal"] == s["signal"]
    assert s["cost"]["backend"] in ("litert", "keras")
    assert s["sets"]["val"]["at_threshold"]["coverage"] >= s["target_coverage_on_val"]  # 90% of validation answered
