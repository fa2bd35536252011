"""A CAM mapped back onto the original image: works with any model that has ``cam()`` (LiteRT or Keras).

No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from brainscan.cam import methods as cam_methods
from brainscan.cam.overlay import peak
from brainscan.scans.preprocess import Prepared, to_original


class CamModel(Protocol):
    """What a heatmap needs of a model (brainscan.runtime.inference.Model has it)."""

    def cam(self, x: np.ndarray, class_index: int, method: str = "gradcam", layer: str | None = None) -> np.ndarray:
        ...


def normalize_cam(cam: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a flat map (no evidence anywhere) stays all zeros instead of dividing by zero."""
    cam = np.maximum(np.nan_to_num(cam), 0.0)
    top = float(cam.max())
    return (cam / top).astype(np.float32) if top > 1e-12 else np.zeros_like(cam, dtype=np.float32)


@dataclass
class Heatmap:
    method: str
    class_index: int
    model_space: np.ndarray  # size x size, [0, 1]
    original: np.ndarray  # H x W of the original image, [0, 1], zero outside the crop
    peak: tuple[int, int]  # (x, y) in original pixel coordinates
    instead_of: str | None = None  # the method asked for, when its map was empty and this one is drawn instead

    @property
    def empty(self) -> bool:
        """No visible evidence on the image: the map is (nearly) zero everywhere inside it, e.g. because the
        evidence lay in the padding around the crop. 0.02 is below what an overlay can show in 8 bits."""
        return not bool(self.original.max() > 0.02)


def heatmap(model: CamModel, prepared: Prepared, class_index: int, method: str = "gradcam",
            layer: str | None = None, fallback: bool = True) -> Heatmap:
    """CAM for a prepared scan and a class, mapped back through the crop box onto the original image. With
    fallback, a method whose map is empty gives way to its registry's ``when_empty`` method (Grad-CAM -> CAM)."""
    entry = cam_methods.get(method)  # ValueError for an unknown method, before any work
    cam = normalize_cam(model.cam(np.asarray(prepared.input, np.float32), class_index, method, layer))
    original = to_original(cam, prepared.box, prepared.original_shape)
    shown = Heatmap(method, class_index, cam, original, peak(original))
    if shown.empty and fallback and entry.when_empty:
        instead = heatmap(model, prepared, class_index, entry.when_empty, layer, fallback=False)
        instead.instead_of = method
        return instead
    return shown
