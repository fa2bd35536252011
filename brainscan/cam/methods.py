"""Names of the CAM methods (kept apart from explain.py so the CLI parser needs no TensorFlow)."""

CAM_METHODS = ("gradcam", "gradcam++", "scorecam")
CAM_LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}
