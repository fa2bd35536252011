"""A model folder run through LiteRT (the TensorFlow Lite runtime) instead of TensorFlow.

Saving a model folder also writes ``model.tflite`` (outputs: the last feature map and the logits) and
``head.npz`` (the final linear layer). With them a scan check needs neither TensorFlow nor Keras: the
prediction is one LiteRT call and the CAMs are closed forms (brainscan.cam.headcam). This keeps the app's
memory and start-up small. A LiteRT interpreter is not thread-safe, so every call holds a lock;
Streamlit sessions share one LiteModel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainscan.cam import headcam
from brainscan.cam import methods as cam_methods
from brainscan.cam.methods import HeadInputs
from brainscan.errors import ModelError
from brainscan.modelfolder import HEAD_FILE, LITE_FILE, CardFields


@dataclass
class LiteModel(CardFields):
    interpreter: object
    card: dict
    path: Path
    head: dict[str, np.ndarray]  # "kernel": K x classes, "bias": classes
    ood: dict[str, np.ndarray] = field(default_factory=dict)
    backend: str = "litert"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _batch: int = 1
    _last: tuple | None = None  # (input bytes, feature map, logits) of the last single input

    def feature_map_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """batch: n x size x size x C float32 -> (n x h x w x K feature maps, n x classes logits).
        A single input seen just before (a scan's prediction, then its heatmap) is not run twice."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        key = batch.tobytes() if len(batch) == 1 else None
        last = self._last
        if key is not None and last is not None and last[0] == key:
            return last[1].copy(), last[2].copy()
        it = self.interpreter
        with self._lock:
            inp = it.get_input_details()[0]
            if len(batch) != self._batch:
                it.resize_tensor_input(inp["index"], list(batch.shape))
                it.allocate_tensors()
                self._batch = len(batch)
            it.set_tensor(inp["index"], batch)
            it.invoke()
            outs = [np.array(it.get_tensor(d["index"])) for d in it.get_output_details()]
        fmap = next(o for o in outs if o.ndim == 4)
        logits = next(o for o in outs if o.ndim == 2)
        if key is not None:
            self._last = (key, fmap.copy(), logits.copy())
        return fmap, logits

    def forget_last_input(self) -> None:
        """Drop the one-input cache, so that the next call runs the network (benchmarks time real passes)."""
        self._last = None

    def features_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features (global average of the last feature map, as the network's own pooling layer
        computes them) and logits."""
        fmap, logits = self.feature_map_and_logits(batch)
        return fmap.mean(axis=(1, 2)), logits

    def cam(self, x: np.ndarray, class_index: int, method: str = "gradcam", layer: str | None = None) -> np.ndarray:
        """Unnormalised CAM at input size for one input (size x size x C)."""
        if layer is not None:
            raise ModelError("A CAM on another layer than the last feature map needs the Keras model "
                             "(load the model with backend='keras').")
        entry = cam_methods.get(method)
        fmap = self.feature_map_and_logits(x[None])[0][0]
        inputs = HeadInputs(fmap, self.head["kernel"], x, lambda b: self.feature_map_and_logits(b)[1])
        return headcam.expand(entry.closed_form(inputs, class_index), x.shape[0])


def load_lite(folder: Path, card: dict, ood: dict[str, np.ndarray], threads: int = 2) -> LiteModel:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:
        raise ModelError("LiteRT is not installed (pip install ai-edge-litert).") from err
    try:
        interpreter = Interpreter(model_path=str(folder / LITE_FILE), num_threads=threads)
        interpreter.allocate_tensors()
        with np.load(folder / HEAD_FILE) as f:
            head = {"kernel": np.asarray(f["kernel"], np.float32), "bias": np.asarray(f["bias"], np.float32)}
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise ModelError(f"Could not load {folder / LITE_FILE}: {err}") from err
    return LiteModel(interpreter, card, folder, head, ood)
