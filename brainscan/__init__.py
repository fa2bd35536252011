"""BrainScan: brain-MRI tumor check (research and teaching demo, not a medical device).

Importing this package, its IO and its preprocessing never imports TensorFlow, and neither does a
scan check on a model folder with ``model.tflite`` (``brainscan.runtime.inference`` runs it through LiteRT);
only ``brainscan.model``, ``brainscan.cam.keras_vis``, ``brainscan.training.augment`` and ``brainscan.training.run`` do.
"""

__version__ = "0.1.0"

CLASSES_4 = ("glioma", "meningioma", "notumor", "pituitary")
CLASSES_2 = ("notumor", "tumor")
