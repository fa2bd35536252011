"""Configuration in one place (a leaf: no brainscan imports, no TensorFlow).

Where the repository, its models and its runs are, the environment variables that move them, and
the training configuration whose defaults the command line and the run manager share (the Train page starts
from its own quick-demo settings, pages/train.py, and passes every field it sets).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
RUNS_DIR = REPO_ROOT / "runs"
SAMPLES_DIR = REPO_ROOT / "sample_images"
CASE_LIBRARY_DIR = REPO_ROOT / "case_library"  # teaching cases with known truth (scripts/build_case_library.py)
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"  # where the Train page looks for datasets

MODEL_ENV = "BRAINSCAN_MODEL"  # one model folder (or a file in it) for the app and the CLI
MODELS_ENV = "BRAINSCAN_MODELS_DIR"  # the folder of model folders (promote writes there, the app looks there)
RUNS_ENV = "BRAINSCAN_RUNS_DIR"  # the Train page's run folders


def resolve_data_path(path: str | os.PathLike) -> Path:
    """A dataset path as typed on the page: ~ expanded, relative paths taken from the repository root."""
    p = Path(os.path.expanduser(str(path).strip()))
    return (p if p.is_absolute() else REPO_ROOT / p).resolve()  # one spelling per folder ('/../' and links)


def models_dir(override: str | os.PathLike | None = None) -> Path:
    """The models folder: the argument, else $BRAINSCAN_MODELS_DIR, else <repo>/models."""
    return Path(override or os.environ.get(MODELS_ENV) or MODELS_DIR)


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    """The runs folder: the argument, else $BRAINSCAN_RUNS_DIR, else <repo>/runs."""
    return Path(override or os.environ.get(RUNS_ENV) or RUNS_DIR)


@dataclass
class TrainConfig:
    """One training run's settings; its defaults are the CLI's (`python -m brainscan train`)."""

    data: str
    out: str
    arch: str = "compact"
    epochs: int = 30
    img_size: int = 128
    weights: str = "none"
    batch_size: int = 32
    learning_rate: float = 2e-3
    augment: bool = True
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    patience: int = 6
    name: str = ""
    max_images: int = 0  # 0 = all; a cap for quick demos (keeps class balance roughly)
    lesions: float = 0.0  # share of tumor-free training images given a synthetic lesion (training.lesions)
    randconv: float = 0.0  # chance that a training image is filtered by a random convolution (training.augment)
    vflip: float = 0.0  # chance that a training image is shown upside down (scans stored posterior-up, e.g. BRATS)
    stripped: float = 0.0  # chance that a training image is shown skull-stripped (scans.preprocess.strip_skull)
    extra_train: str = ""  # a class-folder set whose images join the training part only (never val or test)
    time_limit_s: float = 0  # 0 = none; training stops after this many seconds from its start and keeps the best
    recipe: str = ""  # a recipe (recipes/v3.toml): several sources at once; data is then its data root ("" = its own)
    holdout_institution: str = ""  # recipe runs: an lgg-tcga institution kept out of training (a site never seen)
    steps_per_epoch: int = 0  # recipe runs draw balanced batches; 0 = training images / batch size
    guide_cams: float = 0.0  # recipe runs: weight of the mask-guided CAM loss (training.guidance); 0 = off
    contrast: float = 0.0  # chance that a training image's intensities are remapped by a random non-monotone curve
    train_sequences: str = ""  # recipe runs: comma list (e.g. "t1c"); training and validation keep only these
    init_from: str = ""  # a model folder (or its model.keras) whose weights start the run; same arch and classes
    distribute: str = ""  # "" = one device; "mirrored" = every local GPU (tf.distribute.MirroredStrategy)
    cpu_replicas: int = 0  # mirrored without GPUs: split the CPU into this many replicas (tests the path; no speed-up)

DISTRIBUTE_CHOICES = ("", "mirrored", "multi-worker")


TRAIN_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.name not in ("data", "out")}
