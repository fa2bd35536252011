"""Training augmentation: shapes, value range, black background, and that each transform really changes images."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from brainscan.training import augment  # noqa: E402


def _heads(n: int = 8, size: int = 16) -> tf.Tensor:
    """A batch of bright discs with a darker square 'lesion' on black: a head on its background."""
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size * 0.4) ** 2).astype(np.float32)
    img = disc * 0.8
    img[5:8, 5:8] = 0.3
    rng = np.random.default_rng(0)
    batch = np.stack([img * rng.uniform(0.8, 1.0) for _ in range(n)])[..., None]
    return tf.constant(batch, tf.float32)


def test_random_convolution_off_is_identity():
    x = _heads()
    np.testing.assert_array_equal(augment.random_convolution(x, p=0.0).numpy(), x.numpy())


def test_random_convolution_changes_texture_inside_head_only():
    tf.random.set_seed(1)
    x = _heads()
    changed = [augment.random_convolution(x, p=1.0).numpy() for _ in range(6)]
    head = x.numpy() > 0.02
    for y in changed:
        assert y.shape == x.shape
        assert y.min() >= 0.0 and y.max() <= 1.0
        assert np.all(y[~head] == 0.0)  # the background stays black: no frame or source cue is added
    # With random kernels and blend weights at least one draw must differ from the input.
    assert max(np.abs(y - x.numpy()).max() for y in changed) > 0.05


def test_augment_batch_keeps_shape_and_range_with_and_without_randconv():
    tf.random.set_seed(2)
    x = _heads()
    for randconv in (0.0, 1.0):
        y = augment.augment_batch(x, randconv=randconv).numpy()
        assert y.shape == x.shape
        assert y.min() >= 0.0 and y.max() <= 1.0
        assert not np.allclose(y, x.numpy())


def test_random_affine_without_motion_is_identity():
    x = _heads()
    y = augment.random_affine(x, max_deg=0, scale=(1.0, 1.0), shift=0.0).numpy()
    np.testing.assert_allclose(y, x.numpy(), atol=1e-5)


def test_random_skull_strip_blacks_out_corners_only_when_applied():
    x = tf.ones([4, 16, 16, 1])
    np.testing.assert_array_equal(augment.random_skull_strip(x, p=0.0).numpy(), x.numpy())
    y = augment.random_skull_strip(x, p=1.0).numpy()
    assert np.all(y[:, 0, 0] == 0) and np.all(y[:, 8, 8] == 1)


def test_flip_turns_upside_down_with_its_chance_and_moves_the_outline_alike():
    tf.random.set_seed(0)
    x = np.zeros((64, 16, 16, 1), np.float32)
    x[:, 1, 5] = 1.0  # one bright pixel in row 1
    rows = lambda t: np.argwhere(t.numpy()[..., 0] > 0)[:, 1]  # noqa: E731
    assert set(rows(augment._flip(tf.constant(x)))) == {1}  # left-right only by default
    assert set(rows(augment._flip(tf.constant(x), vflip=1.0))) == {14}  # row 1 -> row 16 - 1 - 1
    share = (rows(augment._flip(tf.constant(x), vflip=0.5)) == 14).mean()
    assert 0.2 < share < 0.8
    big = np.zeros((32, 32, 32, 1), np.float32)
    big[:, 7:10, 14:17] = 1.0  # a 3 x 3 outline in the upper half
    img, mask = augment.augment_batch(tf.constant(big), mask=tf.constant(big), vflip=1.0)
    assert img.shape == mask.shape == (32, 32, 32, 1)
    m = mask.numpy()[..., 0]
    assert (m.max(axis=(1, 2)) > 0.3).all()
    peak_rows = np.argmax(m.max(axis=2), axis=1)
    assert (peak_rows >= 16).all()  # the outline went upside down with its image (warps move it only a few px)


def test_contrast_remap_off_is_identity():
    x = _heads()
    np.testing.assert_array_equal(augment.random_contrast_remap(x, p=0.0).numpy(), x.numpy())


def test_contrast_remap_can_reorder_tissues_and_keeps_the_background_black():
    """The lesion (0.3 of the head's brightness) is darker than the head as given; a non-monotone curve makes it
    the brighter one in some draws (a monotone curve never could), the result stays in [0, 1] and the
    background stays black."""
    tf.random.set_seed(3)
    x = _heads(n=16)
    inverted = 0
    for _ in range(4):
        y = augment.random_contrast_remap(x, p=1.0).numpy()
        assert y.min() >= 0.0 and y.max() <= 1.0
        assert (y[x.numpy() <= 0.03] == 0).all()
        lesion, tissue = y[:, 6, 6, 0], y[:, 8, 12, 0]
        inverted += int((lesion > tissue).sum())
    assert 0 < inverted < 64  # reordered in some draws, not in all


def test_augment_batch_applies_the_remap_with_the_mask_untouched():
    tf.random.set_seed(0)
    x = _heads()
    mask = tf.zeros_like(x)
    out, m = augment.augment_batch(x, mask=mask, contrast=1.0)
    assert out.shape == x.shape and float(tf.reduce_max(m)) == 0.0
