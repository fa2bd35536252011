"""The CAM method registry: the one list of heatmap methods (no TensorFlow, no SciPy at import).

Each entry names its closed form for the pooled linear head (a function in brainscan.cam.headcam, run
by the LiteRT back-end) and its tf-keras-vis visualiser (a class in brainscan.cam.keras_vis, run for
Keras models). The CLI's --cam-method, the Scan page's picker and both back-ends read this registry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CamMethod:
    name: str
    label: str
    closed_form: str  # function in brainscan.cam.headcam
    needs_forward: bool  # the closed form runs the network again (masked inputs) instead of using the head
    keras_vis: str  # visualiser class in brainscan.cam.keras_vis
    when_empty: str | None = None  # the method drawn instead when this one's map is empty


REGISTRY: dict[str, CamMethod] = {m.name: m for m in (
    # Grad-CAM cuts the class evidence at zero; where no position adds to the class score it is empty, and
    # CAM (the same map before the cut) shows where the evidence is least against the class.
    CamMethod("gradcam", "Grad-CAM", "gradcam", False, "GradCam", when_empty="cam"),
    CamMethod("gradcam++", "Grad-CAM++", "gradcam_plus_plus", False, "GradCamPlusPlus"),
    CamMethod("scorecam", "Score-CAM", "scorecam", True, "ScoreCam"),
    CamMethod("cam", "CAM", "class_activation_map", False, "Cam"),
)}
CAM_METHODS = tuple(REGISTRY)
DEFAULT_CAM_METHOD = "gradcam"  # what the app shows first, the CLI and the pointing game use
CAM_LABELS = {name: m.label for name, m in REGISTRY.items()}


def get(name: str) -> CamMethod:
    """The registry entry, or a ValueError naming the choices."""
    if name not in REGISTRY:
        raise ValueError(f"Unknown CAM method {name!r}; choose one of {', '.join(CAM_METHODS)}.")
    return REGISTRY[name]
