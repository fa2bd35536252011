"""BrainScan: brain-MRI tumor check (research and teaching demo, not a medical device).

Importing this package, its IO and its preprocessing never imports TensorFlow, and neither does a
scan check on a model folder with ``model.tflite`` (``brainscan.inference`` runs it through LiteRT);
only ``brainscan.model``, ``brainscan.explain``, ``brainscan.augment`` and ``brainscan.train`` do.
"""

__version__ = "0.1.0"

CLASSES_4 = ("glioma", "meningioma", "notumor", "pituitary")
CLASSES_2 = ("notumor", "tumor")
