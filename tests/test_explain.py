"""Grad-CAM family on a toy model whose answer depends on one image region."""

from pathlib import Path

import keras
import numpy as np
import pytest

from brainscan.cam.keras_vis import CAM_METHODS, cam_for_input, find_target_layer, heatmap
from brainscan.runtime.keras_model import LoadedModel
from brainscan.scans.preprocess import prepare


@keras.saving.register_keras_serializable("brainscan_tests")
class TopLeftOnly(keras.layers.Layer):
    """Zeroes everything outside the top-left quadrant (a layer, not a Lambda, so models can be cloned)."""

    def call(self, x):
        h, w = x.shape[1], x.shape[2]
        mask = np.zeros((1, h, w, 1), np.float32)
        mask[:, : h // 2, : w // 2] = 1.0
        return x * mask


def region_model(size: int = 32) -> keras.Model:
    """Logit 1 = mean activation of a conv layer that only sees the top-left quadrant."""
    inp = keras.Input((size, size, 1))
    x = TopLeftOnly(name="only_top_left")(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="target_conv",
                            kernel_initializer="ones", bias_initializer="zeros")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([[-1.0, 1.0]] * 4), name="logits")(x)
    return keras.Model(inp, out)


def test_find_target_layer_is_last_spatial_layer():
    assert find_target_layer(region_model()) == "target_conv"


@pytest.mark.parametrize("method", CAM_METHODS)
def test_cam_peaks_in_the_region_the_answer_depends_on(method):
    model = region_model()
    x = np.full((32, 32, 1), 0.5, np.float32)
    cam = cam_for_input(model, x, class_index=1, method=method)
    assert cam.shape == (32, 32) and cam.max() == pytest.approx(1.0)
    row, col = np.unravel_index(cam.argmax(), cam.shape)
    assert row < 16 and col < 16
    assert cam[16:, :].max() < 0.5 and cam[:, 16:].max() < 0.5


def test_heatmap_maps_back_to_original_coordinates():
    model = LoadedModel(region_model(), {"classes": ["notumor", "tumor"], "input_size": 32}, Path("."))
    image = np.zeros((100, 100), np.float32)
    image[20:80, 30:90] = 0.6  # the "brain": a 60 x 60 box at x 30..89, y 20..79
    prepared = prepare(image, 32)
    hm = heatmap(model, prepared, 1, "gradcam")
    assert hm.original.shape == (100, 100)
    x, y = hm.peak
    assert 25 <= x <= 62 and 15 <= y <= 52  # top-left quarter of the brain box
    assert hm.original[:10].max() == 0  # outside the crop stays cold


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="Unknown CAM method"):
        cam_for_input(region_model(), np.zeros((32, 32, 1), np.float32), 1, "lime")


def test_heatmap_is_empty_when_evidence_lies_outside_the_image():
    from brainscan.cam.keras_vis import Heatmap

    inside = np.zeros((8, 8), np.float32)
    inside[2, 3] = 0.5
    assert not Heatmap("gradcam", 0, inside, inside, (3, 2)).empty
    assert Heatmap("gradcam", 0, inside, np.full((8, 8), 0.01, np.float32), (0, 0)).empty
