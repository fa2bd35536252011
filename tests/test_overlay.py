import numpy as np
import pytest

from brainscan.cam.overlay import colorize, gradcam_overlay, peak


def test_overlay_zero_cam_leaves_image_and_full_cam_blends():
    img = np.full((4, 4), 0.5, np.float32)
    cam = np.zeros((4, 4), np.float32)
    assert (gradcam_overlay(img, cam, 0.7) == 128).all()
    cam[1, 2] = 1.0
    out = gradcam_overlay(img, cam, 0.5, "jet")
    red = colorize(cam)[1, 2].astype(float)
    assert out[1, 2].tolist() == np.rint(0.5 * 127.5 + 0.5 * red).astype(int).tolist()
    assert (out[0, 0] == 128).all()


def test_overlay_opacity_changes_output_and_validates():
    img = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    cam = np.ones((8, 8), np.float32)
    assert not np.array_equal(gradcam_overlay(img, cam, 0.2), gradcam_overlay(img, cam, 0.8))
    with pytest.raises(ValueError):
        gradcam_overlay(img, cam, 1.5)
    with pytest.raises(ValueError):
        gradcam_overlay(img, cam[:4], 0.5)
    with pytest.raises(ValueError):
        colorize(cam, "nope")


def test_peak_is_x_column_y_row():
    cam = np.zeros((5, 7))
    cam[3, 6] = 1
    assert peak(cam) == (6, 3)
