"""A model folder run through Keras (imports TensorFlow): the fallback when it has no model.tflite,
and the model training, export and CAMs on any layer (brainscan.cam.keras_vis) work with."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from brainscan.errors import ModelError  # noqa: E402
from brainscan.modelfolder import FEATURES_LAYER, KERAS_FILE, CardFields, read_folder  # noqa: E402


@dataclass
class LoadedModel(CardFields):
    keras_model: keras.Model
    card: dict
    path: Path
    ood: dict[str, np.ndarray] = field(default_factory=dict)
    backend: str = "keras"
    cams: dict = field(default_factory=dict)  # CAM visualisers per method (brainscan.cam.keras_vis), built on first use
    _infer: object | None = None  # compiled (features, logits) function, built on first use

    def features_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._infer is None:
            import tensorflow as tf

            both = features_and_logits_model(self.keras_model)
            # A traced graph instead of eager layer calls: for a model this small, Python overhead is most of
            # the time (measured by `python -m brainscan bench`).
            self._infer = tf.function(lambda x: both(x, training=False), reduce_retracing=True)
        feats, logits = self._infer(np.asarray(batch, np.float32))
        return np.asarray(feats), np.asarray(logits)

    def cam(self, x: np.ndarray, class_index: int, method: str = "gradcam", layer: str | None = None) -> np.ndarray:
        """Unnormalised CAM at input size for one input, through tf-keras-vis (brainscan.cam.keras_vis)."""
        from brainscan.cam.keras_vis import raw_cam

        return raw_cam(self.keras_model, x, class_index, method, layer, self.cams)


def features_and_logits_model(keras_model: keras.Model) -> keras.Model:
    """The same network with two outputs: pooled features (for the unfamiliar-scan score) and logits."""
    return keras.Model(keras_model.inputs, [keras_model.get_layer(FEATURES_LAYER).output, keras_model.output])


def load_keras_model(folder: Path, card: dict, ood: dict[str, np.ndarray]) -> LoadedModel:
    model_path = folder / KERAS_FILE
    if not model_path.is_file():
        raise ModelError(f"{folder} is not a model folder (it needs model.keras and card.json).")
    try:
        km = keras.models.load_model(model_path, compile=False, safe_mode=False)
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"Could not load {model_path}: {err}") from err
    return LoadedModel(km, card, folder, ood)


def load_model(path: str | os.PathLike | None = None) -> LoadedModel:
    """The Keras model of a folder (for CAMs on any layer, training, export); the app uses
    runtime.inference.load_model."""
    return load_keras_model(*read_folder(path))
