"""Writing a model folder (imports TensorFlow): model.keras, the LiteRT files, card.json, ood.npz,
all into a temporary sibling and then one atomic swap (brainscan.modelfolder.replace_dir)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
from keras import layers

from brainscan.modelfolder import HEAD_FILE, LITE_FILE, crash_point, recover, replace_dir, write_json
from brainscan.runtime.keras_model import load_model


def save_model_folder(keras_model: keras.Model, card: dict, folder: str | os.PathLike,
                      extra_files: dict[str, bytes] | None = None, ood: dict[str, np.ndarray] | None = None) -> Path:
    """Write a complete model folder crash-safely: everything goes to a temporary sibling, is fsynced and swapped
    in by one atomic step (brainscan.modelfolder.replace_dir); leftovers of an earlier kill are recovered first."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover(folder)
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
        crash_point("written")
        replace_dir(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


FLOAT16_ABOVE_BYTES = 8 * 2**20  # a float32 LiteRT file larger than this is written with float16 weights


def export_lite(keras_model: keras.Model, folder: Path) -> bool:
    """Write model.tflite (outputs: last feature map, logits) and head.npz for brainscan.runtime.lite.

    Only for the head brainscan's CAM closed forms assume (global average pooling, then one linear
    layer); checked numerically. Returns False (and writes nothing) for any other network."""
    import tensorflow as tf

    dense = keras_model.layers[-1]
    if not isinstance(dense, layers.Dense) or dense.activation not in (keras.activations.linear, None):
        return False
    two = lite_outputs_model(keras_model)
    kernel, bias = (np.asarray(w, np.float32) for w in dense.get_weights())
    probe = np.random.default_rng(0).random((2, *keras_model.input_shape[1:]), dtype=np.float32)
    fmap, logits = (np.asarray(t) for t in two([probe], training=False))
    if kernel.shape[0] != fmap.shape[-1] or not np.allclose(fmap.mean(axis=(1, 2)) @ kernel + bias, logits,
                                                            atol=1e-3, rtol=1e-3):
        return False  # something other than pooling + linear sits between the feature map and the logits
    converter = tf.lite.TFLiteConverter.from_keras_model(two)
    flat = converter.convert()
    if len(flat) > FLOAT16_ABOVE_BYTES:
        # Weights stored as float16 (computed in float32 at run time): half the file, logits within ~1e-2.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        flat = converter.convert()
    (folder / LITE_FILE).write_bytes(flat)
    np.savez(folder / HEAD_FILE, kernel=kernel, bias=bias)
    return True


def lite_outputs_model(keras_model: keras.Model) -> keras.Model:
    """The network with the two outputs the LiteRT file has: the last feature map (for the CAMs) and the logits."""
    from brainscan.cam.keras_vis import find_target_layer

    target = keras_model.get_layer(find_target_layer(keras_model))
    return keras.Model(keras_model.inputs, [target.output, keras_model.output])


def inference_only(keras_model: keras.Model) -> keras.Model:
    """The same layers and weights without the optimizer state (which would triple the file size)."""
    if getattr(keras_model, "optimizer", None) is None:
        return keras_model
    clone = keras.models.clone_model(keras_model)
    clone.set_weights(keras_model.get_weights())
    if getattr(clone, "optimizer", None) is not None:  # Keras 3.15 clones the compile state too
        clone.optimizer = None
        clone.compiled = False
    return clone


def add_lite_files(folder: str | os.PathLike) -> bool:
    """Give an existing model folder its LiteRT files (for folders saved before brainscan wrote them)."""
    folder = Path(folder)
    model = load_model(folder)
    return export_lite(model.keras_model, folder)
