"""Mask-guided CAM training (optional, recipe runs: `train --guide-cams W`).

A classifier trained on labels alone may look anywhere that separates its classes; its Grad-CAM then
points at whatever that was. Where the training data has tumour outlines (lgg-tcga-slices: a FLAIR
abnormality mask per glioma slice; brain-tumor-mri: the BRISC 2025 outlines of its glioma, meningioma and
pituitary slices), this adds a second loss on the same head, in the spirit of guided attention with external
supervision (Li et al., "Tell me where to look", CVPR 2018): the per-position logit of the image's own class,
L_ij = A_ij . w_c + b_c (the map whose positive part is the closed-form Grad-CAM of brainscan.cam.headcam), is
pushed up inside the outline and down elsewhere, by a binary cross-entropy against the fraction of each
feature-map cell the outline covers. Tumour-free images are outlines with nothing in them (the maps of every
tumour class are pushed down); tumour images without an outline add no such loss.
Skull-stripped training views (`train --stripped`) get their own outline, cropped like the stripped image,
so the guidance also holds on scans that look like the skull-stripped research volumes (BRATS).

The network that is saved is unchanged (pooling and one linear layer), so the LiteRT runtime and the
closed-form CAMs apply as before. External test sets (BRATS) never give their masks to training.
"""

from __future__ import annotations

import numpy as np

from brainscan.scans.batch import load_gray
from brainscan.scans.preprocess import crop_square, prepare, resize, strip_skull

CAM_OUTPUT = "cam"


def mask_input(image_path: str, mask_path: str, size: int, strip_depth: float = 0.0) -> np.ndarray:
    """The tumour outline in model-input geometry: the image's own crop box applied to its mask. With
    strip_depth > 0, that of the skull-stripped view (batch.prepare_one with the same depth): its crop box,
    and only the part of the outline that the strip kept."""
    return _outline(load_gray(image_path), load_gray(mask_path) > 0.5, size, strip_depth)


def _outline(gray: np.ndarray, mask: np.ndarray, size: int, strip_depth: float) -> np.ndarray:
    if strip_depth > 0:
        gray = strip_skull(gray, strip_depth)
        mask = mask & (gray > 0)
    box = prepare(gray, size, keep_steps=False).box
    return resize(crop_square(mask.astype(np.float32), box), size)


def mask_targets(items, size: int, tumor_free: str = "notumor",
                 strip_depths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per training input: its outline at input size (uint8 0/255) and whether it has one (1: an outline,
    or tumour-free so an empty one; 0: a tumour without an outline, no guidance). With strip_depths (one per
    item, as given to the stripped copies), the outlines are 2 x N x size x size: plain view, stripped view."""
    views = 1 if strip_depths is None else 2
    masks = np.zeros((views, len(items), size, size), np.uint8)
    has = np.zeros(len(items), np.float32)
    for i, it in enumerate(items):
        if it.mask:
            gray, outline = load_gray(it.path), load_gray(it.mask) > 0.5  # read once for both views
            for v in range(views):
                depth = 0.0 if v == 0 else float(strip_depths[i])
                masks[v, i] = (_outline(gray, outline, size, depth) > 0.5).astype(np.uint8) * 255
            has[i] = 1.0
        elif it.label == tumor_free:
            has[i] = 1.0
    return (masks[0] if views == 1 else masks), has


def guided_model(model):
    """A training twin of `model` with a second output: the per-position logit map of every class, computed by
    the model's own final linear layer on the feature map it pools (shared weights, nothing new)."""
    import keras

    from brainscan.modelfolder import FEATURES_LAYER

    fmap = model.get_layer(FEATURES_LAYER).input
    dense = model.layers[-1]
    per_position = dense(fmap)  # N x h x w x classes: the linear head at every position
    cam = keras.layers.Identity(name=CAM_OUTPUT)(per_position)
    return keras.Model(model.inputs, {"logits": model.output, CAM_OUTPUT: cam}), tuple(fmap.shape[1:3])


def cam_loss(y_true, y_pred):
    """y_true: N x h x w x (1 + C) (covered fraction, then a weight per class); y_pred: N x h x w x C logits.
    Per cell, the weighted binary cross-entropy of each class's logit against the covered fraction, averaged over
    the weighted classes; then the mean over cells (0 for an image without weights)."""
    import tensorflow as tf

    target, weight = y_true[..., :1], y_true[..., 1:]
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.broadcast_to(target, tf.shape(y_pred)), logits=y_pred)
    per_cell = tf.reduce_sum(weight * bce, axis=-1) / tf.maximum(tf.reduce_sum(weight, axis=-1), 1.0)
    return tf.reduce_mean(per_cell, axis=[1, 2])


def cam_target(mask, has, label, map_size: tuple[int, int], n_classes: int, tumor_free: int):
    """Augmented N x S x S x 1 outline (0..1), whether it is known, and the class index of each image ->
    N x h x w x (1 + C): the covered fraction per cell, then one weight per class. A tumour image with an outline
    guides its own class's map; a tumour-free image (an empty outline) pushes every tumour class's map down; an
    image without a known outline guides nothing."""
    import tensorflow as tf

    frac = tf.image.resize(mask, map_size, method="area")
    own = tf.one_hot(label, n_classes)  # N x C
    tumour_maps = 1.0 - tf.one_hot(tf.fill(tf.shape(label), tumor_free), n_classes) if tumor_free >= 0 \
        else tf.zeros_like(own)
    free = tf.cast(tf.equal(label, tumor_free), tf.float32)[:, None]
    per_class = (free * tumour_maps + (1.0 - free) * own) * tf.cast(has, tf.float32)[:, None]  # N x C
    weight = tf.ones_like(frac) * per_class[:, None, None, :]  # the same weights in every cell
    return tf.concat([frac, weight], axis=-1)
