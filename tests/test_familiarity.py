"""The pixel familiarity check (brainscan.runtime.familiarity) and how prediction combines it with the feature check."""

import numpy as np
import pytest

from brainscan.runtime import familiarity


def _discs(n: int, rng: np.random.Generator, size: int = 32, radius: float = 12.0) -> np.ndarray:
    """Bright discs with a darker core (a cartoon head), jittered in position, size and brightness."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size, 1), np.float32)
    for i in range(n):
        cy, cx = size / 2 + rng.normal(0, 1, 2)
        r = radius + rng.normal(0, 0.7)
        d = np.hypot(yy - cy, xx - cx)
        out[i, ..., 0] = np.where(d <= r, 0.9, 0.0) * rng.uniform(0.9, 1.1) - np.where(d <= r - 3, 0.4, 0.0)
    return np.clip(out + rng.normal(0, 0.02, out.shape), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    return familiarity.fit(_discs(300, rng), _discs(200, rng), components=8), rng


def test_validation_scans_spread_over_the_percentiles(fitted):
    stats, rng = fitted
    p = familiarity.percentiles(_discs(200, rng), stats)
    assert 0.0 <= p.min() and p.max() <= 1.0
    assert 0.3 < np.median(p) < 0.7  # fresh images from the same source sit in the middle
    assert np.mean(p >= 0.99) < 0.05


def test_other_looking_images_score_as_unfamiliar(fitted):
    stats, rng = fitted
    squares = np.zeros((20, 32, 32, 1), np.float32)
    squares[:, 1:31, 1:31] = 0.9  # bright corners, where every training image is black
    noise = rng.random((20, 32, 32, 1), dtype=np.float32)
    assert np.all(familiarity.percentiles(squares, stats) >= 0.99)
    assert np.all(familiarity.percentiles(noise, stats) >= 0.99)


def test_thumbnail_is_an_area_average():
    x = np.zeros((1, 48, 48, 1), np.float32)
    x[0, :24] = 1.0  # top half white
    t = familiarity.thumbnails(x).reshape(familiarity.THUMB, familiarity.THUMB)
    assert t[: familiarity.THUMB // 2].min() == pytest.approx(1.0)
    assert t[familiarity.THUMB // 2 :].max() == pytest.approx(0.0)


def test_prediction_takes_the_more_unusual_of_the_two_checks(fitted, tiny_model):
    from brainscan.runtime.inference import load_model, predict_batch

    model = load_model(tiny_model)
    assert familiarity.has_stats(model.ood)  # training stores the pixel check with the model
    noise = np.random.default_rng(1).random((3, model.size, model.size, 1), dtype=np.float32)
    for p in predict_batch(model, noise):
        assert p.ood_score >= 0.99 and p.out_of_distribution
