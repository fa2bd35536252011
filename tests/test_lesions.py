"""Synthetic lesions (brainscan.training.lesions) and the class they are given
(brainscan.training.run.lesion_target)."""

import numpy as np
import pytest

from brainscan.training.run import lesion_target


def _heads(n: int = 6, size: int = 32) -> np.ndarray:
    """n images with a uniform disc 'head' (0.4) of radius 12 on a black background."""
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= 12**2).astype(np.float32)
    return np.repeat((0.4 * disc)[None, ..., None], n, axis=0)


def test_lesion_target_prefers_glioma_then_tumor():
    assert lesion_target(["glioma", "meningioma", "notumor", "pituitary"]) == 0
    assert lesion_target(["notumor", "tumor"]) == 1
    assert lesion_target(["cat", "dog"]) is None
    assert lesion_target(["glioma", "meningioma"]) is None  # nothing tumor-free to paint into


def test_painted_lesions_change_the_inside_of_the_head_only():
    tf = pytest.importorskip("tensorflow")
    from brainscan.training.lesions import paint_lesions

    tf.random.set_seed(0)
    x = _heads()
    out = paint_lesions(tf.constant(x)).numpy()
    outside = x[..., 0] == 0
    assert np.all(out[..., 0][outside] == 0)  # the background stays black
    changed = np.abs(out - x)[..., 0] > 0.05
    for i in range(len(x)):
        assert changed[i].sum() >= 4  # every image received a visible lesion
        assert changed[i].sum() < (~outside[i]).sum()  # ... that does not fill the whole head


def test_add_lesions_relabels_only_tumor_free_images():
    tf = pytest.importorskip("tensorflow")
    from brainscan.training.lesions import add_lesions

    x = _heads(4)
    y = np.array([2, 2, 0, 1], np.int64)  # notumor = 2, lesion class = 0
    out_x, out_y = add_lesions(tf.constant(x), tf.constant(y), p=1.0, notumor=2, lesion_class=0)
    assert out_y.numpy().tolist() == [0, 0, 0, 1]
    np.testing.assert_array_equal(out_x.numpy()[2:], x[2:])  # tumor images untouched
    assert np.abs(out_x.numpy()[:2] - x[:2]).max() > 0.05

    same_x, same_y = add_lesions(tf.constant(x), tf.constant(y), p=0.0, notumor=2, lesion_class=0)
    assert same_y.numpy().tolist() == y.tolist()
    np.testing.assert_array_equal(same_x.numpy(), x)
