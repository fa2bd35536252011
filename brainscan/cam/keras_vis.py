"""Class activation maps with tf-keras-vis, for Keras models (brainscan.runtime.keras_model.LoadedModel.cam).

brainscan.cam.headcam computes the same maps in closed form for the LiteRT runtime and is tested against
these; brainscan.cam.heatmap maps either onto the original image.

Each method is a tiny class over one base; the tf-keras-vis object (which clones the model with
softmax replaced by a linear output) is built once per model and method, then reused.
"""

from __future__ import annotations

import keras
import numpy as np
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from brainscan.cam import methods as cam_methods
from brainscan.cam.heatmap import Heatmap, heatmap, normalize_cam
from brainscan.cam.methods import CAM_LABELS, CAM_METHODS

keras.utils.disable_interactive_logging()  # Score-CAM calls predict(); no progress bars in logs

__all__ = ["CAM_LABELS", "CAM_METHODS", "Heatmap", "find_target_layer", "heatmap", "normalize_cam", "cam_for_input",
           "raw_cam"]


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


class Visualiser:
    """Base: wraps one tf-keras-vis visualiser for one model."""

    visualizer_cls: type = Gradcam

    def __init__(self, model: keras.Model):
        self.model = model
        # ReplaceToLinear: scores must be pre-softmax logits, else saturated softmax kills the gradient.
        # Our models already end in a linear layer, so the modifier is a no-op for them.
        self.visualizer = self.visualizer_cls(model, model_modifier=ReplaceToLinear(), clone=True)

    def __call__(self, x: np.ndarray, class_index: int, layer: str) -> np.ndarray:
        channels = int(self.model.get_layer(layer).output.shape[-1])
        # seek_penultimate_conv_layer=False: use exactly this layer. tf-keras-vis would otherwise step back from
        # an activation layer to the convolution before it, i.e. to the map before BatchNorm and ReLU.
        cam = self.visualizer(CategoricalScore([class_index]), x, penultimate_layer=layer,
                              seek_penultimate_conv_layer=False, **self.options(channels))
        return np.asarray(cam[0], dtype=np.float32)

    def options(self, channels: int) -> dict:
        return {"normalize_cam": False}


class GradCam(Visualiser):
    visualizer_cls = Gradcam


class GradCamPlusPlus(Visualiser):
    visualizer_cls = GradcamPlusPlus


class ScoreCam(Visualiser):
    visualizer_cls = Scorecam

    def options(self, channels: int) -> dict:
        # max_N: Faster-Score-CAM, only the 32 strongest channels are masked in (fast enough on a CPU).
        return {"normalize_cam": False, "max_N": min(32, channels)}


class Cam(Visualiser):
    """Grad-CAM without its ReLU, shifted to a minimum of 0: for a pooled linear head this is CAM (Zhou et al.)."""

    visualizer_cls = Gradcam

    def __call__(self, x: np.ndarray, class_index: int, layer: str) -> np.ndarray:
        cam = super().__call__(x, class_index, layer)
        return cam - cam.min()

    def options(self, channels: int) -> dict:
        return {"normalize_cam": False, "activation_modifier": None}


# The visualiser of each method of the registry (brainscan.cam.methods), under the same name.
VISUALIZERS: dict[str, type[Visualiser]] = {"gradcam": GradCam, "gradcam++": GradCamPlusPlus, "scorecam": ScoreCam,
                                           "cam": Cam}


def _method(model: keras.Model, method: str, cache: dict | None) -> Visualiser:
    """The visualiser for (model, method); kept in the caller's cache (LoadedModel.cams), which dies with the model."""
    cls = VISUALIZERS[cam_methods.get(method).name]
    if cache is None:
        return cls(model)
    if method not in cache:
        cache[method] = cls(model)
    return cache[method]


def raw_cam(model: keras.Model, x: np.ndarray, class_index: int, method: str = "gradcam",
            layer: str | None = None, cache: dict | None = None) -> np.ndarray:
    """Unnormalised CAM at input size for one input (size x size x C), computed by tf-keras-vis."""
    layer = layer or find_target_layer(model)
    return _method(model, method, cache)(np.asarray(x, np.float32)[None], class_index, layer)


def cam_for_input(model: keras.Model, x: np.ndarray, class_index: int, method: str = "gradcam",
                  layer: str | None = None, cache: dict | None = None) -> np.ndarray:
    """CAM in model space (size x size, [0, 1]) for one input (size x size x C)."""
    return normalize_cam(raw_cam(model, x, class_index, method, layer, cache))


