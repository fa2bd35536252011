"""The architecture registry: the one list of networks brainscan can train (no TensorFlow at import).

Adding an architecture is one entry in ARCHITECTURES: its name (the CLI's --arch, TrainConfig.arch),
the Train page's label, whether it can start from ImageNet weights, and a builder. Builders import
Keras only when called (brainscan.training.networks), so the CLI, the run manager and the Train page
read this registry without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brainscan.errors import ModelError


@dataclass(frozen=True)
class Architecture:
    name: str
    label: str  # shown on the Train page
    pretrained: bool  # whether --weights imagenet / PATH applies
    build: Callable  # (size, n_classes, weights or None, bn_momentum) -> keras.Model


def _compact(size: int, n_classes: int, weights: str | None, bn_momentum: float):
    from brainscan.training.networks import build_compact

    return build_compact(size, n_classes, bn_momentum=bn_momentum)


def _lite0(size: int, n_classes: int, weights: str | None, bn_momentum: float):
    from brainscan.training.networks import build_efficientnet_lite0

    return build_efficientnet_lite0(size, n_classes, weights)


def _transfer(arch: str) -> Callable:
    def build(size: int, n_classes: int, weights: str | None, bn_momentum: float):
        from brainscan.training.networks import build_transfer

        return build_transfer(arch, size, n_classes, weights)

    return build


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture("compact", "Compact CNN (0.7 M parameters, fast on a CPU)", False, _compact),
    Architecture("efficientnet_lite0", "EfficientNet-Lite0 (3.4 M parameters, ImageNet weights offline)", True,
                 _lite0),
    Architecture("efficientnetb0", "EfficientNet-B0 (4 M parameters, slower)", True, _transfer("efficientnetb0")),
    Architecture("vgg19", "VGG19 (20 M parameters, very slow on a CPU)", True, _transfer("vgg19")),
)}
NAMES = tuple(ARCHITECTURES)
LABELS = {name: a.label for name, a in ARCHITECTURES.items()}


def get(name: str) -> Architecture:
    """The registry entry, or a ModelError naming the choices."""
    if name not in ARCHITECTURES:
        raise ModelError(f"Unknown architecture {name!r}; choose one of {', '.join(NAMES)}.")
    return ARCHITECTURES[name]


def build_model(arch: str, size: int, n_classes: int, weights: str | None = None, bn_momentum: float = 0.99):
    """A fresh network: weights None/"none" (random), "imagenet" (Keras downloads them) or a local file path."""
    entry = get(arch)
    weights = None if weights in (None, "none") else weights
    if weights is not None and not entry.pretrained:
        raise ModelError(f"The {arch} architecture has no pretrained weights; use --weights none.")
    return entry.build(size, n_classes, weights, bn_momentum)
