"""Class activation maps with tf-keras-vis, mapped back onto the original image.

Each method is a tiny class over one base; the tf-keras-vis object (which clones the model with
softmax replaced by a linear output) is built once per model and method, then reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from brainscan.explain_methods import CAM_LABELS, CAM_METHODS
from brainscan.overlay import peak
from brainscan.preprocess import Prepared, to_original

keras.utils.disable_interactive_logging()  # Score-CAM calls predict(); no progress bars in logs

__all__ = ["CAM_LABELS", "CAM_METHODS", "Heatmap", "find_target_layer", "heatmap", "cam_for_input"]


def find_target_layer(model: keras.Model) -> str:
    """The last layer whose output is still a spatial map (batch x H x W x C with H, W > 1)."""
    for layer in reversed(model.layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):  # layers without a single symbolic output
            continue
        if len(shape) == 4 and (shape[1] or 0) > 1:
            return layer.name
    raise ValueError("The model has no layer with a spatial output, so no CAM can be computed.")


class CamMethod:
    """Base: wraps one tf-keras-vis visualiser for one model."""

    visualizer_cls: type = Gradcam

    def __init__(self, model: keras.Model):
        self.model = model
        # ReplaceToLinear: scores must be pre-softmax logits, else saturated softmax kills the gradient.
        # Our models already end in a linear layer, so the modifier is a no-op for them.
        self.visualizer = self.visualizer_cls(model, model_modifier=ReplaceToLinear(), clone=True)

    def __call__(self, x: np.ndarray, class_index: int, layer: str) -> np.ndarray:
        channels = int(self.model.get_layer(layer).output.shape[-1])
        cam = self.visualizer(CategoricalScore([class_index]), x, penultimate_layer=layer, **self.options(channels))
        return np.asarray(cam[0], dtype=np.float32)

    def options(self, channels: int) -> dict:
        return {"normalize_cam": False}


class GradCam(CamMethod):
    visualizer_cls = Gradcam


class GradCamPlusPlus(CamMethod):
    visualizer_cls = GradcamPlusPlus


class ScoreCam(CamMethod):
    visualizer_cls = Scorecam

    def options(self, channels: int) -> dict:
        # max_N: Faster-Score-CAM, only the 32 strongest channels are masked in (fast enough on a CPU).
        return {"normalize_cam": False, "max_N": min(32, channels)}


_CLASSES = {"gradcam": GradCam, "gradcam++": GradCamPlusPlus, "scorecam": ScoreCam}


def _method(model: keras.Model, method: str, cache: dict | None) -> CamMethod:
    """The visualiser for (model, method); kept in the caller's cache (LoadedModel.cams), which dies with the model."""
    if method not in _CLASSES:
        raise ValueError(f"Unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}.")
    if cache is None:
        return _CLASSES[method](model)
    if method not in cache:
        cache[method] = _CLASSES[method](model)
    return cache[method]


def normalize_cam(cam: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a flat map (no evidence anywhere) stays all zeros instead of dividing by zero."""
    cam = np.maximum(np.nan_to_num(cam), 0.0)
    top = float(cam.max())
    return (cam / top).astype(np.float32) if top > 1e-12 else np.zeros_like(cam, dtype=np.float32)


def cam_for_input(model: keras.Model, x: np.ndarray, class_index: int, method: str = "gradcam",
                  layer: str | None = None, cache: dict | None = None) -> np.ndarray:
    """CAM in model space (size x size, [0, 1]) for one input (size x size x C)."""
    layer = layer or find_target_layer(model)
    cam = _method(model, method, cache)(np.asarray(x, np.float32)[None], class_index, layer)
    return normalize_cam(cam)


@dataclass
class Heatmap:
    method: str
    class_index: int
    model_space: np.ndarray  # size x size, [0, 1]
    original: np.ndarray  # H x W of the original image, [0, 1], zero outside the crop
    peak: tuple[int, int]  # (x, y) in original pixel coordinates

    @property
    def empty(self) -> bool:
        """No visible evidence on the image: the map is (nearly) zero everywhere inside it, e.g. because the
        evidence lay in the padding around the crop. 0.02 is below what an overlay can show in 8 bits."""
        return not bool(self.original.max() > 0.02)


def heatmap(model, prepared: Prepared, class_index: int, method: str = "gradcam",
            layer: str | None = None) -> Heatmap:
    """CAM for a prepared scan and a class, mapped back through the crop box onto the original image."""
    cam = cam_for_input(model.keras_model, prepared.input, class_index, method, layer, model.cams)
    original = to_original(cam, prepared.box, prepared.original_shape)
    return Heatmap(method, class_index, cam, original, peak(original))
