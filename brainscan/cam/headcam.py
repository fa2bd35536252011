"""Grad-CAM, Grad-CAM++ and Score-CAM in NumPy, for networks that end in global average pooling and
one linear layer (all of brainscan's architectures). No TensorFlow here.

For such a head the logit of class c is  y_c = b_c + sum_k w_kc * mean_ij A_kij,  so its gradient
with respect to the last feature map is the same at every position: dy_c/dA_kij = w_kc / (H*W).
tf-keras-vis's formulas then reduce to closed forms of the feature map and the head's weights, and
the CAM needs only the forward pass the prediction already made (no second pass, no autodiff).
tests/test_headcam.py checks each closed form against tf-keras-vis on real models.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def expand(cam: np.ndarray, size: int) -> np.ndarray:
    """Upsample an h x w map to size x size with linear interpolation, as tf-keras-vis does."""
    from scipy.ndimage import zoom  # imported when a map is drawn, not when the registry is read

    h, w = cam.shape
    return zoom(cam.astype(np.float32), (size / h, size / w), order=1)


def gradcam(fmap: np.ndarray, weights: np.ndarray, class_index: int) -> np.ndarray:
    """fmap: h x w x K feature map; weights: K x classes. Returns the h x w map (unnormalised)."""
    # Channel weights = spatial mean of the gradient = w_kc / (H*W); the constant factor does not
    # change the normalised map, so the head's column is used directly.
    alpha = weights[:, class_index]
    return np.maximum(fmap @ alpha, 0.0)


def class_activation_map(fmap: np.ndarray, weights: np.ndarray, class_index: int) -> np.ndarray:
    """CAM (Zhou et al., CVPR 2016): each position's contribution to the class logit, fmap @ w_c, shifted so that
    its minimum is 0 (the paper's min-max scaling). Grad-CAM is the same map cut at zero, so where no position
    adds to the logit Grad-CAM is empty while CAM still shows where the evidence is least against the class."""
    contribution = fmap @ weights[:, class_index]
    return contribution - contribution.min()


def gradcam_plus_plus(fmap: np.ndarray, weights: np.ndarray, class_index: int) -> np.ndarray:
    """With a spatially constant gradient g_k, Grad-CAM++'s alphas are all 1/(H*W) wherever g_k != 0
    (2*S*g^2 / (2*S*g^2 + S*g^3*sum A) normalised over positions), so the channel weight is
    sum_ij relu(S*g_k)/(H*W) = relu(S*g_k): the positive part of the head's column, up to scale."""
    alpha = np.maximum(weights[:, class_index], 0.0)
    return np.maximum(fmap @ alpha, 0.0)


def top_channels(fmap: np.ndarray, max_n: int) -> np.ndarray:
    """Indices of the max_n channels with the largest spatial standard deviation (Faster Score-CAM)."""
    std = fmap.reshape(-1, fmap.shape[-1]).std(axis=0)
    if max_n >= fmap.shape[-1]:
        return np.arange(fmap.shape[-1])
    return np.argsort(-std, kind="stable")[:max_n]


def scorecam(fmap: np.ndarray, x: np.ndarray, logits_of: Callable[[np.ndarray], np.ndarray], class_index: int,
             max_n: int = 32) -> np.ndarray:
    """Score-CAM: each selected channel, upsampled and scaled to [0, 1], masks the input; the class's
    softmax score on that masked input weighs the channel. x: size x size x C; logits_of: batch -> logits."""
    keep = top_channels(fmap, max_n)
    acts = fmap[..., keep]  # h x w x N
    from scipy.ndimage import zoom

    size = x.shape[0]
    h, w = acts.shape[:2]
    up = zoom(acts, (size / h, size / w, 1), order=1, mode="nearest")  # size x size x N
    lo = up.min(axis=(0, 1), keepdims=True)
    hi = up.max(axis=(0, 1), keepdims=True)
    masks = (up - lo) / (hi - lo + 1e-7)
    masked = x[None] * np.moveaxis(masks, -1, 0)[..., None]  # N x size x size x C
    logits = np.asarray(logits_of(masked.astype(np.float32)), np.float64)
    z = logits - logits.max(axis=1, keepdims=True)
    scores = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))[:, class_index]
    return np.maximum(acts @ scores.astype(np.float32), 0.0)
