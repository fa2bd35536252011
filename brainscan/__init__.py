"""BrainScan: brain-MRI tumor check (research and teaching demo, not a medical device).

Layers, top to bottom (imports point down only; tests/test_layers.py): app (brainscan.app, pages/),
orchestration (check, runs, cli, bench, appserver), training / evaluation, runtime, cam, scans, the
model folder (modelfolder), and the leaves config and errors.

Importing this package, brainscan.scans and brainscan.cam (but keras_vis) never imports TensorFlow, and
neither does a scan check on a model folder with ``model.tflite`` (brainscan.runtime.inference runs it
through LiteRT); brainscan.runtime.keras_model, brainscan.cam.keras_vis and most of brainscan.training do.
"""

__version__ = "0.1.0"

CLASSES_4 = ("glioma", "meningioma", "notumor", "pituitary")
CLASSES_2 = ("notumor", "tumor")
