"""Closed-form CAMs (brainscan.cam.headcam) and the LiteRT runtime (brainscan.runtime.lite) against tf-keras-vis
and Keras."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from brainscan.cam import headcam


def test_gradcam_is_the_relu_of_the_class_weighted_feature_map():
    # 2 x 2 positions x K=2 channels; position (1, 0) holds channels (3, 1).
    fmap = np.array([[[1.0, 0.0], [0.0, 2.0]], [[3.0, 1.0], [0.5, 0.5]]], np.float32)
    weights = np.array([[1.0, -1.0], [-2.0, 0.5]], np.float32)  # K=2 x 2 classes
    # class 0: 1*A0 - 2*A1 = [[1 - 0, 0 - 4], [3 - 2, 0.5 - 1]] -> relu -> [[1, 0], [1, 0]]
    np.testing.assert_allclose(headcam.gradcam(fmap, weights, 0), [[1, 0], [1, 0]])
    # CAM: the same contributions before the cut, shifted by their minimum (-4).
    np.testing.assert_allclose(headcam.class_activation_map(fmap, weights, 0), [[5, 0], [5, 3.5]])
    # Grad-CAM++ keeps only positive channel weights: class 0 -> 1*A0 only.
    np.testing.assert_allclose(headcam.gradcam_plus_plus(fmap, weights, 0), [[1, 0], [3, 0.5]])


def test_top_channels_prefers_varied_channels():
    fmap = np.zeros((4, 4, 3), np.float32)
    fmap[..., 0] = 5.0  # constant: std 0
    fmap[0, 0, 1] = 1.0
    fmap[:2, :, 2] = 3.0
    assert list(headcam.top_channels(fmap, 2)) == [2, 1]
    assert list(headcam.top_channels(fmap, 5)) == [0, 1, 2]


def test_scorecam_weighs_channels_by_the_class_score_of_the_masked_input():
    fmap = np.zeros((2, 2, 2), np.float32)
    fmap[0, 0, 0] = 1.0  # channel 0 lights the top-left
    fmap[1, 1, 1] = 1.0  # channel 1 lights the bottom-right
    x = np.ones((4, 4, 1), np.float32)

    def logits_of(batch):  # class 1's logit = brightness of the top-left corner pixel
        return np.stack([np.zeros(len(batch)), 10 * batch[:, 0, 0, 0]], axis=1)

    cam = headcam.scorecam(fmap, x, logits_of, class_index=1, max_n=2)
    # Channel 0's mask keeps the corner: logits (0, 10), weight softmax = 1 / (1 + e^-10). Channel 1's mask
    # is 0 there: logits (0, 0), weight 0.5.
    assert cam[0, 0] == pytest.approx(1 / (1 + np.exp(-10)), rel=1e-5)
    assert cam[1, 1] == pytest.approx(0.5, rel=1e-5)
    assert cam[0, 1] == 0 and cam[1, 0] == 0


def test_expand_keeps_corners_like_tf_keras_vis():
    small = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32)
    big = headcam.expand(small, 8)
    assert big.shape == (8, 8)
    assert big[0, 0] == pytest.approx(0.0) and big[-1, -1] == pytest.approx(3.0)


@pytest.fixture(scope="module")
def both_backends(tiny_model):
    from brainscan.runtime.inference import load_model

    return load_model(tiny_model, backend="litert"), load_model(tiny_model, backend="keras")


def test_saved_model_folder_has_lite_files(tiny_model):
    assert (Path(tiny_model) / "model.tflite").is_file() and (Path(tiny_model) / "head.npz").is_file()


def test_litert_predictions_match_keras(both_backends, tiny_dataset):
    from brainscan.scans.batch import prepare_paths

    lite, keras_model = both_backends
    paths = sorted(str(p) for p in Path(tiny_dataset).rglob("*.png"))[::7]
    x, _, _ = prepare_paths(paths, lite.size)
    f_lite, l_lite = lite.features_and_logits(x)
    f_keras, l_keras = keras_model.features_and_logits(x)
    np.testing.assert_allclose(l_lite, l_keras, atol=1e-4)
    np.testing.assert_allclose(f_lite, f_keras, atol=1e-4)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam", "cam"])
def test_closed_forms_match_tf_keras_vis(both_backends, tiny_dataset, method):
    from brainscan.cam.heatmap import normalize_cam
    from brainscan.scans.batch import prepare_paths

    lite, keras_model = both_backends
    paths = sorted(str(p) for p in Path(tiny_dataset).rglob("*.png"))[::9]
    x, _, _ = prepare_paths(paths, lite.size)
    compared = 0
    for xi in x:
        for c in range(len(lite.classes)):
            ref = normalize_cam(keras_model.cam(xi, c, method))
            if ref.max() == 0:
                continue
            np.testing.assert_allclose(normalize_cam(lite.cam(xi, c, method)), ref, atol=1e-4)
            compared += 1
    assert compared >= 4


def test_export_refuses_a_head_that_is_not_pooling_plus_linear(tmp_path):
    import keras

    from brainscan.training.export import export_lite

    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(2)(x)
    assert export_lite(keras.Model(inp, out), tmp_path) is False
    assert not list(tmp_path.iterdir())


def test_a_scan_check_on_litert_never_imports_tensorflow(tiny_model):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from brainscan.check import check_bytes, load_checker
        from brainscan.bench import sample_png
        model = load_checker({tiny_model!r})
        for method in ("gradcam", "gradcam++", "scorecam"):
            r = check_bytes(model, sample_png(64), "x.png", cam_method=method)
            assert r.heatmap is not None and r.heatmap.original.shape == (64, 64)
        assert type(model).__name__ == "LiteModel"
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "TensorFlow was imported"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_a_failed_litert_export_still_saves_a_complete_keras_folder(tiny_model, tmp_path, monkeypatch):
    from brainscan.runtime.inference import load_model
    from brainscan.runtime.keras_model import load_model as load_keras
    from brainscan.training import export

    def broken(*_):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export, "export_lite", broken)
    loaded = load_keras(tiny_model)
    out = export.save_model_folder(loaded.keras_model, loaded.card, tmp_path / "m")
    assert (out / "model.keras").is_file() and not (out / "model.tflite").exists()
    assert load_model(out).backend == "keras"


def test_the_one_input_cache_is_used_once_per_scan_and_benchmarks_can_empty_it(tiny_model):
    from brainscan.bench import _median_ms
    from brainscan.runtime.inference import fresh_input, load_model

    lite = load_model(tiny_model, backend="litert")
    calls = []
    lite.interpreter = _CountingInterpreter(lite.interpreter, calls)
    x = np.random.default_rng(0).random((1, lite.size, lite.size, 1)).astype(np.float32)
    lite.features_and_logits(x)
    lite.features_and_logits(x)
    assert len(calls) == 1  # the heatmap after the prediction reuses its forward pass
    _median_ms(lambda: lite.features_and_logits(x), 3)
    assert len(calls) == 1  # timing the same scan again would time the cache ...
    _median_ms(lambda: lite.features_and_logits(x), 3, fresh_input(lite))
    assert len(calls) == 1 + 3  # ... unless it is emptied before each timed call (the warm-up still hits it)


class _CountingInterpreter:
    def __init__(self, inner, calls):
        self._inner, self._calls = inner, calls

    def invoke(self):
        self._calls.append(1)
        return self._inner.invoke()

    def __getattr__(self, name):
        return getattr(self._inner, name)
