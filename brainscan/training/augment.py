"""Training-time augmentation on batches of prepared images (TensorFlow ops, used inside tf.data).

The training set's classes come from different collections (tumor classes mostly contrast T1,
notumor from others), so a model can learn a source's look instead of the tumor. These
transforms make sequence, contrast, framing and skull-or-no-skull uninformative.
"""

from __future__ import annotations

import math

import tensorflow as tf


def _uniform(n, lo, hi):
    return tf.random.uniform([n, 1, 1, 1], lo, hi)


def _maybe(n, p, changed, original):
    keep = tf.cast(tf.random.uniform([n, 1, 1, 1]) < p, changed.dtype)
    return keep * changed + (1 - keep) * original


def random_affine(x: tf.Tensor, max_deg: float = 15, scale: tuple[float, float] = (0.85, 1.15),
                  shift: float = 0.08) -> tf.Tensor:
    """Rotation, zoom and translation in one projective warp per image."""
    n = tf.shape(x)[0]
    size = tf.cast(tf.shape(x)[1], tf.float32)
    angle = tf.random.uniform([n], -max_deg, max_deg) * math.pi / 180
    s = tf.random.uniform([n], scale[0], scale[1])
    tx = tf.random.uniform([n], -shift, shift) * size
    ty = tf.random.uniform([n], -shift, shift) * size
    cos, sin = tf.cos(angle) / s, tf.sin(angle) / s
    c = (size - 1) / 2
    # Output pixel (x, y) samples input at A @ (x - c, y - c) + c + t.
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = c - a0 * c - a1 * c + tx
    b2 = c - b0 * c - b1 * c + ty
    zeros = tf.zeros([n])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=tf.shape(x)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def random_intensity(x: tf.Tensor) -> tf.Tensor:
    """Gamma, contrast/brightness, a random monotone curve (histogram change) and rare inversion."""
    n = tf.shape(x)[0]
    x = tf.pow(tf.clip_by_value(x, 1e-6, 1.0), tf.exp(_uniform(n, -0.6, 0.6)))
    x = x * _uniform(n, 0.75, 1.25) + _uniform(n, -0.1, 0.1)
    # Random monotone piecewise-linear curve through 5 knots: reshapes the histogram like another sequence.
    knots = tf.sort(tf.random.uniform([n, 3]), axis=1)
    ys = tf.concat([tf.zeros([n, 1]), knots, tf.ones([n, 1])], axis=1)  # n x 5
    xc = tf.clip_by_value(x, 0.0, 1.0) * 4.0
    idx = tf.clip_by_value(tf.cast(tf.floor(xc), tf.int32), 0, 3)
    frac = xc - tf.cast(idx, tf.float32)
    y0 = tf.gather(ys, idx[..., 0], batch_dims=1)[..., None]
    y1 = tf.gather(ys, idx[..., 0] + 1, batch_dims=1)[..., None]
    curved = y0 + frac * (y1 - y0)
    x = _maybe(n, 0.4, curved, x)
    # Inversion: dark fluid becomes bright as between T1 and T2; only inside the head so background stays dark.
    head = tf.cast(x > 0.03, tf.float32)
    x = _maybe(n, 0.15, (1.0 - x) * head, x)
    return tf.clip_by_value(x, 0.0, 1.0)


def random_contrast_remap(x: tf.Tensor, p: float = 0.5, knots: int = 6) -> tf.Tensor:
    """Remap intensities through a random non-monotone piecewise-linear curve (values at `knots` evenly spaced
    inputs drawn uniformly, not sorted), then rescale to [0, 1] inside the head. A monotone curve keeps the
    order of tissues; another sequence does not (fluid dark on T1, bright on T2; a lesion bright on FLAIR, dark
    on T1), so only a curve that can reorder tissues teaches a model that knows a tumour on contrast T1 alone
    to look for its shape rather than its brightness (the contrast proxy, scripts/contrast_proxy.sh)."""
    n = tf.shape(x)[0]
    ys = tf.random.uniform([n, knots])
    xc = tf.clip_by_value(x, 0.0, 1.0) * (knots - 1)
    idx = tf.clip_by_value(tf.cast(tf.floor(xc), tf.int32), 0, knots - 2)
    frac = xc - tf.cast(idx, tf.float32)
    y0 = tf.gather(ys, idx[..., 0], batch_dims=1)[..., None]  # the curve's value at the knot left of each pixel
    y1 = tf.gather(ys, idx[..., 0] + 1, batch_dims=1)[..., None]  # ... and right of it
    curved = y0 + frac * (y1 - y0)
    head = tf.cast(x > 0.03, tf.float32)
    lo = tf.reduce_min(curved + (1 - head) * 1e3, axis=[1, 2, 3], keepdims=True)
    hi = tf.reduce_max(curved - (1 - head) * 1e3, axis=[1, 2, 3], keepdims=True)
    curved = (curved - lo) / tf.maximum(hi - lo, 1e-3) * head  # the background stays black
    return _maybe(n, p, tf.clip_by_value(curved, 0.0, 1.0), x)


def random_skull_strip(x: tf.Tensor, p: float = 0.3) -> tf.Tensor:
    """Black out everything outside a random centred ellipse, mimicking skull-stripped volumes."""
    n = tf.shape(x)[0]
    size = tf.shape(x)[1]
    r = tf.linspace(-1.0, 1.0, size)
    yy, xx = tf.meshgrid(r, r, indexing="ij")
    ry, rx = _uniform(n, 0.7, 0.9), _uniform(n, 0.6, 0.85)
    inside = tf.cast((xx[None, :, :, None] / rx) ** 2 + (yy[None, :, :, None] / ry) ** 2 <= 1.0, tf.float32)
    return _maybe(n, p, x * inside, x)


def random_resolution(x: tf.Tensor, p: float = 0.5, max_factor: float = 3.0) -> tf.Tensor:
    """Down- then up-sample by a random factor: sharp and blurry sources (512 px vs upscaled low-res
    exports) must not be a cue for the class."""
    size = tf.shape(x)[1]
    factor = tf.random.uniform([], 1.0, max_factor)
    small = tf.cast(tf.cast(size, tf.float32) / factor, tf.int32)
    degraded = tf.image.resize(tf.image.resize(x, [small, small], antialias=True), [size, size])
    return _maybe(tf.shape(x)[0], p, degraded, x)


def random_noise_blur(x: tf.Tensor) -> tf.Tensor:
    n = tf.shape(x)[0]
    x = random_resolution(x)
    noisy = x + tf.random.normal(tf.shape(x)) * _uniform(n, 0.0, 0.05)
    x = _maybe(n, 0.5, noisy, x)
    return tf.clip_by_value(x, 0.0, 1.0)


def random_convolution(x: tf.Tensor, p: float = 0.5) -> tf.Tensor:
    """RandConv (Xu et al., ICLR 2021): filter the batch with one random kernel (1, 3, 5 or 7 px, Gaussian
    weights), blend with the original and rescale to [0, 1] inside the head. Local texture and contrast
    then change while shapes stay, so texture is a poor cue for the class (sequence, scanner, source)."""
    n = tf.shape(x)[0]
    k = tf.random.shuffle(tf.constant([1, 3, 5, 7]))[0]
    kernel = tf.random.normal([k, k, 1, 1]) / tf.cast(k, tf.float32)
    filtered = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")
    head = tf.cast(x > 0.02, tf.float32)
    lo = tf.reduce_min(filtered + (1 - head) * 1e3, axis=[1, 2, 3], keepdims=True)
    hi = tf.reduce_max(filtered - (1 - head) * 1e3, axis=[1, 2, 3], keepdims=True)
    filtered = (filtered - lo) / tf.maximum(hi - lo, 1e-6)
    alpha = _uniform(n, 0.0, 1.0)
    mixed = tf.clip_by_value(alpha * x + (1 - alpha) * filtered, 0.0, 1.0) * head
    return _maybe(n, p, mixed, x)


def augment_batch(x: tf.Tensor, randconv: float = 0.0, mask: tf.Tensor | None = None, vflip: float = 0.0,
                  contrast: float = 0.0):
    """Augment a batch; with a mask (N x S x S x 1 tumour outline), it undergoes the same flips and warp and
    (x, mask) is returned. vflip: chance of an upside-down view (anterior at the bottom); contrast: chance of a
    non-monotone intensity remap (random_contrast_remap)."""
    if mask is not None:
        both = random_affine(_flip(tf.concat([x, mask], axis=-1), vflip))
        x, mask = both[..., :1], both[..., 1:]
    else:
        x = random_affine(_flip(x, vflip))
    x = random_skull_strip(x, p=0.4)
    head = tf.cast(x > 0.02, tf.float32)
    x = random_intensity(x) * head  # contrast changes stay inside the head; the background stays black
    if contrast > 0:
        x = random_contrast_remap(x, contrast)
    if randconv > 0:
        x = random_convolution(x, randconv)
    x = random_noise_blur(x)
    return x if mask is None else (x, mask)


def _flip(x: tf.Tensor, vflip: float = 0.0) -> tf.Tensor:
    """Left-right flip with chance 0.5; upside down with chance vflip. Exports disagree on which way is up:
    BRATS slices, for one, are stored with the back of the head at the top."""
    n = tf.shape(x)[0]
    x = _maybe(n, 0.5, tf.reverse(x, axis=[2]), x)
    return _maybe(n, vflip, tf.reverse(x, axis=[1]), x) if vflip > 0 else x
