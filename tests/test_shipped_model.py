"""The shipped default model: complete, small, honest (its card's figures are reproducible from its files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "default"
DATA_ROOT = ROOT.parent / "shared" / "data"
DATA = DATA_ROOT / "brain-tumor-mri"

pytestmark = pytest.mark.skipif(not (MODEL / "card.json").is_file(), reason="no shipped model in models/default")


def card() -> dict:
    return json.loads((MODEL / "card.json").read_text())


def test_model_folder_is_complete_and_small():
    for name in ("model.keras", "model.tflite", "head.npz", "card.json", "ood.npz", "metrics.json", "history.json",
                 "split.json", "MODEL_CARD.md"):
        assert (MODEL / name).is_file(), name
    assert (MODEL / "model.tflite").stat().st_size <= 10 * 1024 * 1024  # what the app and CLI run
    assert (MODEL / "model.keras").stat().st_size <= 16 * 1024 * 1024  # Keras-path CAMs, sanity check, re-export


@pytest.mark.slow
def test_litert_runtime_answers_like_keras_on_the_sample_images():
    """The app runs the shipped model through LiteRT; its answers and heatmaps must be Keras's. The LiteRT file
    stores its weights as float16 (half the size), so logits agree to about 0.05, not to float32 precision."""
    from brainscan.cam.heatmap import normalize_cam
    from brainscan.runtime.inference import load_model, softmax
    from brainscan.scans.io import load_scan
    from brainscan.scans.preprocess import prepare

    lite, keras_model = load_model(MODEL, backend="litert"), load_model(MODEL, backend="keras")
    for path in sorted((ROOT / "sample_images").glob("*.png")):
        x = prepare(load_scan(path.read_bytes(), path.name).pixels, lite.size).input
        lite_logits = lite.features_and_logits(x[None])[1]
        keras_logits = keras_model.features_and_logits(x[None])[1]
        np.testing.assert_allclose(lite_logits, keras_logits, atol=0.1)
        np.testing.assert_allclose(softmax(lite_logits, lite.temperature), softmax(keras_logits, lite.temperature),
                                   atol=0.01)  # the calibrated answer a user reads
        assert lite_logits.argmax() == keras_logits.argmax()
        for method in ("gradcam", "gradcam++"):
            expected = normalize_cam(keras_model.cam(x, 0, method))
            np.testing.assert_allclose(normalize_cam(lite.cam(x, 0, method)), expected, atol=0.03)


def test_card_says_what_it_was_trained_on_and_scored():
    c = card()
    assert c["classes"] == ["glioma", "meningioma", "notumor", "pituitary"]
    assert c["training_data"]["recipe"].endswith("v3.toml")
    assert set(c["training_data"]["sources"]) == {"brain-tumor-mri", "lgg-tcga-slices", "ms-ljubljana-slices",
                                                  "ixi-t1-midaxial"}
    assert c["split"]["official_test_with_near_duplicate_in_training"] > 0
    for key in ("test_dedup", "test", "institution_holdout", "val"):
        assert 0 < c["scores"][key]["accuracy"] <= 1
    assert 0 < c["operating_threshold"]["tumor_probability"] < 1
    assert {"brats_flair", "brats_t1c", "brats_flair_upside_down", "brats_t1c_upside_down",
            "yes_no_dedup"} <= set(c["external"])
    assert c["training"]["upside_down_share"] == 0.5 and c["training"]["skull_stripped_share"] == 0.3
    assert c["training"]["command"].startswith("python -m brainscan train")
    assert c["calibration"]["ece_before"] >= 0 and c["calibration"]["ece_after"] >= 0


@pytest.mark.slow
def test_sample_images_get_valid_predictions():
    from brainscan.check import check_bytes, load_checker

    model = load_checker(str(MODEL))
    answers = {}
    for name in ("lgg_glioma_flair.png", "lgg_glioma_multiframe", "brats_glioma_t1c.png", "ixi_healthy_t1.png",
                 "ms_flair_no_tumour.png", "not_mri_photo.png"):
        r = check_bytes(model, (ROOT / "sample_images" / name).read_bytes(), name)
        assert sum(r.prediction.probabilities.values()) == pytest.approx(1.0)
        assert 0 <= r.heatmap.peak[0] < r.scan.pixels.shape[1] and 0 <= r.heatmap.peak[1] < r.scan.pixels.shape[0]
        answers[name] = r.prediction
    for name in ("lgg_glioma_flair.png", "lgg_glioma_multiframe", "brats_glioma_t1c.png"):  # gliomas, outlined
        assert answers[name].label == "glioma", (name, answers[name].probabilities)
    for name in ("ixi_healthy_t1.png", "ms_flair_no_tumour.png"):  # a healthy head; MS lesions are not a tumour
        assert answers[name].label == "notumor" and not answers[name].out_of_distribution, name
    assert answers["not_mri_photo.png"].out_of_distribution  # a photo is flagged as unfamiliar


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/brain-tumor-mri is not beside the repository")
def test_card_accuracy_reproduces_on_the_deduplicated_test_split():
    """Recompute the headline figure from the shipped weights and the shipped split: no hand-typed numbers."""
    from brainscan.evaluation.metrics import classification_metrics
    from brainscan.runtime.inference import softmax
    from brainscan.runtime.keras_model import load_model
    from brainscan.scans.batch import prepare_paths

    model = load_model(MODEL)
    files = json.loads((MODEL / "split.json").read_text())["files"]["test_dedup"]  # relative to the data root
    x, ok, errors = prepare_paths([str(DATA_ROOT / f) for f in files], model.size)
    assert not errors
    y = np.array([model.classes.index(Path(files[i]).parent.name) for i in ok])
    logits = np.asarray(model.keras_model.predict(x, batch_size=64, verbose=0))
    m = classification_metrics(y, softmax(logits, model.temperature), model.classes)
    assert m["n"] == card()["scores"]["test_dedup"]["n"]
    assert m["accuracy"] == pytest.approx(card()["scores"]["test_dedup"]["accuracy"], abs=2 / m["n"])


def test_the_stored_comparison_covers_every_target_with_measured_figures():
    """comparison.json (python -m brainscan compare, shown on the Model page): the shipped model is one of the two,
    every target of the table is a row, and each row's figures are the ones stored for that model."""
    from brainscan.comparison import read_comparison
    from brainscan.evaluation.compare import TARGETS

    result = read_comparison(MODEL)
    assert result is not None
    assert card()["name"] in (result["old"]["name"], result["new"]["name"])
    assert [r["key"] for r in result["rows"]] == [t.key for t in TARGETS]
    for r in result["rows"]:
        assert r["old"] == result["old"].get(r["key"]) and r["new"] == result["new"].get(r["key"])
        assert r["old"] is not None and r["new"] is not None, r["key"]  # every figure was measured
        target = next(t for t in TARGETS if t.key == r["key"])
        assert r["new_met"] == target.met(r["new"]) and r["old_met"] == target.met(r["old"])
