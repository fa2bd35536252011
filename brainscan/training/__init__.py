"""Training: the architecture registry, networks, augmentation and synthetic lesions, one training run,
calibration and export of a model folder. Importing the registry needs no TensorFlow."""
