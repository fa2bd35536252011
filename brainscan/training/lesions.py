"""Synthetic lesions painted into tumor-free training images (TensorFlow ops, used inside tf.data).

In the training set every real tumor comes from one contrast-T1 collection, so "tumor" and "that
collection's look" are the same thing to a model. Painting tumor-like masses (hyperintense as on
FLAIR/T2, ring-enhancing as on contrast T1, or hypointense) into tumor-free scans of the other
collections, and labelling them as glioma, gives the model tumors that do not carry that look:
the only cue left is the focal abnormality itself.
"""

from __future__ import annotations

import math

import tensorflow as tf

HEAD_THRESHOLD = 0.05


def smooth_noise(n, size: int, grid: int = 6) -> tf.Tensor:
    """Low-frequency noise (n x size x size x 1), roughly unit variance: coarse normal noise upsampled."""
    return tf.image.resize(tf.random.normal([n, grid, grid, 1]), [size, size], method="bicubic")


def lesion_centres(head: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """One random (row, col) per image, drawn from the head's interior (away from its edge)."""
    n = tf.shape(head)[0]
    k = max(3, size // 6)
    interior = tf.nn.avg_pool2d(head, k, 1, "SAME") > 0.97  # a k x k window entirely inside the head
    interior = tf.logical_or(interior, tf.reduce_sum(tf.cast(interior, tf.float32), [1, 2, 3], keepdims=True) < 1)
    logits = tf.math.log(tf.reshape(tf.cast(interior, tf.float32), [n, -1]) + 1e-9)
    idx = tf.random.categorical(logits, 1)[:, 0]
    return tf.cast(idx // size, tf.float32), tf.cast(idx % size, tf.float32)


def lesion_distance(n, size: int, cy: tf.Tensor, cx: tf.Tensor) -> tf.Tensor:
    """Normalised distance from each lesion's centre (1 = its irregular boundary), n x size x size x 1."""
    sf = float(size)
    r = tf.random.uniform([n], 0.05, 0.17) * sf
    aspect = tf.sqrt(tf.random.uniform([n], 0.6, 1.6))
    theta = tf.random.uniform([n], 0.0, math.pi)
    grid = tf.range(size, dtype=tf.float32)
    yy = grid[None, :, None] - cy[:, None, None]
    xx = grid[None, None, :] - cx[:, None, None]
    cos, sin = tf.cos(theta)[:, None, None], tf.sin(theta)[:, None, None]
    u = (xx * cos + yy * sin) / (r * aspect)[:, None, None]
    v = (-xx * sin + yy * cos) / (r / aspect)[:, None, None]
    d = tf.sqrt(u * u + v * v)[..., None]
    return d + 0.25 * smooth_noise(n, size, grid=5)  # lobulated, irregular margin


def _per_image(n, lo, hi):
    return tf.random.uniform([n, 1, 1, 1], lo, hi)


def paint_lesions(x: tf.Tensor) -> tf.Tensor:
    """Paint one synthetic lesion into every image of the batch (n x S x S x 1, values in [0, 1])."""
    n, size = tf.shape(x)[0], int(x.shape[1])
    head = tf.cast(x > HEAD_THRESHOLD, tf.float32)
    tissue = tf.reduce_sum(x * head, [1, 2, 3], keepdims=True) / (tf.reduce_sum(head, [1, 2, 3], keepdims=True) + 1)
    cy, cx = lesion_centres(head, size)
    d = lesion_distance(n, size, cy, cx)

    def edge(at, width=0.07):
        return tf.sigmoid((at - d) / width)  # 1 inside distance `at`, 0 outside, soft edge

    mass = edge(1.0)
    rim = mass - edge(tf.random.uniform([n, 1, 1, 1], 0.55, 0.8))
    halo = edge(_per_image(n, 1.2, 2.0), 0.2) - mass
    texture = 1.0 + 0.2 * smooth_noise(n, size, grid=12)
    kind = tf.random.uniform([n, 1, 1, 1], 0, 3, dtype=tf.int32)
    bright = tf.clip_by_value(tissue * _per_image(n, 1.6, 2.6), 0.35, 1.0)
    dark = tissue * _per_image(n, 0.15, 0.5)
    # 0: hyperintense mass (FLAIR/T2); 1: ring enhancement around a dark necrotic core (contrast T1); 2: hypointense.
    inside = tf.where(kind == 0, bright, tf.where(kind == 1, dark + (bright - dark) * rim / (mass + 1e-6), dark))
    edema = tf.where(kind == 0, tissue * _per_image(n, 1.2, 1.6), tissue * _per_image(n, 0.6, 0.9))
    edema_strength = _per_image(n, 0.0, 0.8)
    out = x * (1 - edema_strength * halo) + edema * edema_strength * halo
    out = out * (1 - mass) + inside * texture * mass
    return tf.clip_by_value(out, 0.0, 1.0) * head


def add_lesions(x: tf.Tensor, y: tf.Tensor, p: float, notumor: int, lesion_class: int) -> tuple[tf.Tensor, tf.Tensor]:
    """With probability p per tumor-free image, paint a lesion and relabel it as lesion_class."""
    chosen = tf.logical_and(tf.equal(y, notumor), tf.random.uniform(tf.shape(y)) < p)
    painted = paint_lesions(x)
    x = tf.where(chosen[:, None, None, None], painted, x)
    y = tf.where(chosen, tf.cast(lesion_class, y.dtype), y)
    return x, y
