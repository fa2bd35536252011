"""The CAM method registry: the one list of heatmap methods (no TensorFlow; SciPy only when a map is drawn).

Each entry holds its closed form for the pooled linear head as a callable over :class:`HeadInputs` (run by the
LiteRT back-end and by the sanity check); the tf-keras-vis visualiser of each method, for Keras models, is
registered under the same name in brainscan.cam.keras_vis.VISUALIZERS. The CLI's --cam-method, the Scan page's
picker and both back-ends read this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from brainscan.cam import headcam

SCORECAM_CHANNELS = 32  # Score-CAM masks the input with the strongest channels of the last feature map only


@dataclass(frozen=True)
class HeadInputs:
    """What a closed form may use: the last feature map of one input (h x w x K), the head's kernel
    (K x classes), the input itself and a function from a batch of inputs to their logits (Score-CAM)."""

    fmap: np.ndarray
    kernel: np.ndarray
    x: np.ndarray | None = None
    logits_of: Callable[[np.ndarray], np.ndarray] | None = None


ClosedForm = Callable[[HeadInputs, int], np.ndarray]  # (inputs, class index) -> h x w map


def _scorecam(h: HeadInputs, class_index: int) -> np.ndarray:
    return headcam.scorecam(h.fmap, h.x, h.logits_of, class_index, SCORECAM_CHANNELS)


@dataclass(frozen=True)
class CamMethod:
    name: str
    label: str
    closed_form: ClosedForm
    when_empty: str | None = None  # the method drawn instead when this one's map is empty


REGISTRY: dict[str, CamMethod] = {m.name: m for m in (
    # Grad-CAM cuts the class evidence at zero; where no position adds to the class score it is empty, and
    # CAM (the same map before the cut) shows where the evidence is least against the class.
    CamMethod("gradcam", "Grad-CAM", lambda h, k: headcam.gradcam(h.fmap, h.kernel, k), when_empty="cam"),
    CamMethod("gradcam++", "Grad-CAM++", lambda h, k: headcam.gradcam_plus_plus(h.fmap, h.kernel, k)),
    CamMethod("scorecam", "Score-CAM", _scorecam),
    CamMethod("cam", "CAM", lambda h, k: headcam.class_activation_map(h.fmap, h.kernel, k)),
)}
CAM_METHODS = tuple(REGISTRY)
DEFAULT_CAM_METHOD = "gradcam"  # what the app shows first, the CLI and the pointing game use
CAM_LABELS = {name: m.label for name, m in REGISTRY.items()}


def get(name: str) -> CamMethod:
    """The registry entry, or a ValueError naming the choices."""
    if name not in REGISTRY:
        raise ValueError(f"Unknown CAM method {name!r}; choose one of {', '.join(CAM_METHODS)}.")
    return REGISTRY[name]
