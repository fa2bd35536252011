"""Architectures, loading and saving a model folder with its card, calibrated prediction.

A model folder holds ``model.keras`` (outputs logits), ``card.json`` (classes, input size,
preprocessing, temperature, training data, split, scores) and optionally ``ood.npz`` (feature
statistics for the out-of-distribution score) plus metrics files for the Model page.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from brainscan.errors import ModelError  # noqa: E402,F401
from brainscan.inference import (  # noqa: E402,F401 - TensorFlow-free half, re-exported for callers of this module
    OOD_THRESHOLD,
    CardFields,
    Prediction,
    find_default_model,
    mahalanobis,
    predict,
    predict_batch,
    read_folder,
    softmax,
    tumor_probability,
)
from brainscan.jsonio import write_json  # noqa: E402
from brainscan.lite import HEAD_FILE, LITE_FILE  # noqa: E402
from brainscan.runs import replace_dir  # noqa: E402,F401 - shared with the run manager

ARCHITECTURES = ("compact", "efficientnetb0", "vgg19")
FEATURES_LAYER = "features"


# --- architectures ---------------------------------------------------------------------------

def _conv_block(x, filters: int, name: str, pool: bool = True, bn_momentum: float = 0.99):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn2")(x)
    x = layers.ReLU(name=f"{name}_relu2")(x)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x) if pool else x


def bn_momentum_for(steps: int) -> float:
    """Keras' default 0.99 needs a few hundred steps before BatchNorm's running statistics settle;
    short runs (the Train page's quick defaults) use 0.9 so their evaluation is not at chance."""
    return 0.99 if steps >= 2000 else 0.9


def build_compact(size: int, n_classes: int, channels: int = 1, dropout: float = 0.3,
                  bn_momentum: float = 0.99) -> keras.Model:
    """A small CNN for a 2-core CPU: strided stem, four conv blocks, global pooling, linear logits."""
    inp = keras.Input((size, size, channels), name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = layers.BatchNormalization(momentum=bn_momentum, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = _conv_block(x, 48, "block1", bn_momentum=bn_momentum)
    x = _conv_block(x, 96, "block2", bn_momentum=bn_momentum)
    x = _conv_block(x, 160, "block3", bn_momentum=bn_momentum)
    x = _conv_block(x, 256, "block4", pool=False, bn_momentum=bn_momentum)  # last spatial map: Grad-CAM's target
    x = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name="compact_cnn")


def _backbone(arch: str, rgb255, weights: str | None):
    """Apply an ImageNet backbone to a 0..255 RGB tensor, built on that tensor so that the whole
    network is one flat graph (tf-keras-vis and find_target_layer see its conv layers)."""
    apps = keras.applications
    if arch == "efficientnetb0":  # EfficientNet rescales inside the model: 0..255 in
        return apps.EfficientNetB0(include_top=False, weights=weights, input_tensor=rgb255)
    if arch == "vgg19":  # caffe mode: BGR minus ImageNet means; our three channels are equal, so no flip needed
        x = layers.Normalization(mean=[103.939, 116.779, 123.68], variance=[1.0, 1.0, 1.0],
                                 name="backbone_preprocess")(rgb255)
        return apps.VGG19(include_top=False, weights=weights, input_tensor=x)
    raise ModelError(f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}.")


def build_transfer(arch: str, size: int, n_classes: int, weights: str | None = "imagenet",
                   dropout: float = 0.3) -> keras.Model:
    """An ImageNet backbone from keras.applications on a grayscale input (repeated to RGB inside).

    weights: "imagenet" (Keras downloads them; needs internet), None, or a path to a local
    weights file for the backbone (e.g. the .h5 Keras would have downloaded).
    """
    local = weights if weights not in (None, "imagenet") else None
    if local and not Path(local).is_file():
        raise ModelError(f"Weights file {local} does not exist.")
    inp = keras.Input((size, size, 1), name="image")
    x = layers.Concatenate(name="to_rgb")([inp, inp, inp])
    x = layers.Rescaling(255.0, name="to_255")(x)
    try:
        base = _backbone(arch, x, "imagenet" if weights == "imagenet" else None)
    except ModelError:
        raise
    except Exception as err:  # noqa: BLE001 - Keras raises URLError/OSError/Exception when offline
        raise ModelError(
            f"Could not download the ImageNet weights for {arch} ({type(err).__name__}); this machine may be "
            "offline. Use --weights none to train from scratch, or --weights PATH with a local weights file.") from err
    if local:
        try:
            base.load_weights(local)
        except Exception as err:  # noqa: BLE001
            raise ModelError(f"Could not load the weights file {local} into {arch}: {err}") from err
    x = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(base.output)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name=f"{arch}_transfer")


def build_model(arch: str, size: int, n_classes: int, weights: str | None = None,
                bn_momentum: float = 0.99) -> keras.Model:
    if arch == "compact":
        if weights not in (None, "none"):
            raise ModelError("The compact architecture has no pretrained weights; use --weights none.")
        return build_compact(size, n_classes, bn_momentum=bn_momentum)
    return build_transfer(arch, size, n_classes, None if weights in (None, "none") else weights)


# --- the model folder ------------------------------------------------------------------------

@dataclass
class LoadedModel(CardFields):
    keras_model: keras.Model
    card: dict
    path: Path
    ood: dict[str, np.ndarray] = field(default_factory=dict)
    backend: str = "keras"
    cams: dict = field(default_factory=dict)  # CAM visualisers per method (brainscan.explain), built on first use
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
        """Unnormalised CAM at input size for one input, through tf-keras-vis (brainscan.explain)."""
        from brainscan.explain import raw_cam

        return raw_cam(self.keras_model, x, class_index, method, layer, self.cams)


def features_and_logits_model(keras_model: keras.Model) -> keras.Model:
    """The same network with two outputs: pooled features (for the unfamiliar-scan score) and logits."""
    return keras.Model(keras_model.inputs, [keras_model.get_layer(FEATURES_LAYER).output, keras_model.output])


def load_keras_model(folder: Path, card: dict, ood: dict[str, np.ndarray]) -> LoadedModel:
    model_path = folder / "model.keras"
    if not model_path.is_file():
        raise ModelError(f"{folder} is not a model folder (it needs model.keras and card.json).")
    try:
        km = keras.models.load_model(model_path, compile=False, safe_mode=False)
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"Could not load {model_path}: {err}") from err
    return LoadedModel(km, card, folder, ood)


def load_model(path: str | os.PathLike | None = None) -> LoadedModel:
    """The Keras model of a folder (for CAMs on any layer, training, export); the app uses inference.load_model."""
    return load_keras_model(*read_folder(path))


def save_model_folder(keras_model: keras.Model, card: dict, folder: str | os.PathLike,
                      extra_files: dict[str, bytes] | None = None, ood: dict[str, np.ndarray] | None = None) -> Path:
    """Write a complete model folder atomically: everything goes to a temporary sibling, then one rename."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        keras_model = inference_only(keras_model)
        keras_model.save(tmp / "model.keras")
        try:
            export_lite(keras_model, tmp)
        except Exception as err:  # noqa: BLE001 - the Keras model is complete; it just runs through Keras
            import logging

            logging.getLogger(__name__).warning("No LiteRT export (%s); the folder runs through Keras.",
                                                type(err).__name__)
            for name in (LITE_FILE, HEAD_FILE):
                (tmp / name).unlink(missing_ok=True)
        write_json(tmp / "card.json", card)
        if ood:
            np.savez(tmp / "ood.npz", **ood)
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        replace_dir(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def export_lite(keras_model: keras.Model, folder: Path) -> bool:
    """Write model.tflite (outputs: last feature map, logits) and head.npz for brainscan.lite.

    Only for the head brainscan's CAM closed forms assume (global average pooling, then one linear
    layer); checked numerically. Returns False (and writes nothing) for any other network."""
    import tensorflow as tf

    from brainscan.explain import find_target_layer

    target = keras_model.get_layer(find_target_layer(keras_model))
    dense = keras_model.layers[-1]
    if not isinstance(dense, layers.Dense) or dense.activation not in (keras.activations.linear, None):
        return False
    two = keras.Model(keras_model.inputs, [target.output, keras_model.output])
    kernel, bias = (np.asarray(w, np.float32) for w in dense.get_weights())
    probe = np.random.default_rng(0).random((2, *keras_model.input_shape[1:]), dtype=np.float32)
    fmap, logits = (np.asarray(t) for t in two([probe], training=False))
    if kernel.shape[0] != fmap.shape[-1] or not np.allclose(fmap.mean(axis=(1, 2)) @ kernel + bias, logits,
                                                            atol=1e-3, rtol=1e-3):
        return False  # something other than pooling + linear sits between the feature map and the logits
    converter = tf.lite.TFLiteConverter.from_keras_model(two)
    (folder / LITE_FILE).write_bytes(converter.convert())
    np.savez(folder / HEAD_FILE, kernel=kernel, bias=bias)
    return True


def inference_only(keras_model: keras.Model) -> keras.Model:
    """The same layers and weights without the optimizer state (which would triple the file size)."""
    if getattr(keras_model, "optimizer", None) is None:
        return keras_model
    clone = keras.models.clone_model(keras_model)
    clone.set_weights(keras_model.get_weights())
    return clone


# --- calibrated prediction ------------------------------------------------------------------

def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood on held-out data (Guo et al., 2017)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=int)

    def nll(log_t: float) -> float:
        p = softmax(logits, float(np.exp(log_t)))
        return float(-np.mean(np.log(p[np.arange(len(labels)), labels] + 1e-12)))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def ood_stats(features: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Class means and a shared precision matrix of the penultimate features (Mahalanobis OOD)."""
    means = np.stack([features[labels == c].mean(axis=0) for c in range(n_classes)])
    centred = features - means[labels]
    cov = centred.T @ centred / max(len(features) - 1, 1)
    cov += np.eye(cov.shape[0]) * 1e-3 * np.trace(cov) / cov.shape[0]  # shrinkage: features outnumber samples
    return {"means": means.astype(np.float32), "precision": np.linalg.inv(cov).astype(np.float32)}




def add_lite_files(folder: str | os.PathLike) -> bool:
    """Give an existing model folder its LiteRT files (for folders saved before brainscan wrote them)."""
    folder = Path(folder)
    model = load_model(folder)
    return export_lite(model.keras_model, folder)
