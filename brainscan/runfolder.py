"""The run folder, a leaf of the package like brainscan.modelfolder: what a training run folder holds, the one
status updater, the leftovers a killed save may leave, and the training configuration as a command line.

A run is a folder runs/<YYYYmmdd-HHMMSS>-<name>/ that ``python -m brainscan train`` fills (config.json and
status.json at once, log.txt through the run manager, progress.json after every epoch, history.json,
metrics.json and the model files at the end, card.json last). runs/ also holds .active.json (the running run),
.lock (start and stop are serialised on it) and uploads/ (the visitors' datasets, never a run).

The command line of a run is generated from the fields of brainscan.config.TrainConfig (TRAIN_FLAGS), so that
the run manager (train_argv), the command line's parser (add_train_arguments) and cmd_train
(config_from_args) cannot drop a setting: a new field gets its flag --field-name unless FLAG_NAMES says
otherwise. Imports only brainscan.config and brainscan.modelfolder; no TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brainscan.config import TrainConfig
from brainscan.modelfolder import CARD_FILE, WEIGHT_FILES, read_json, write_json

# --- file names -------------------------------------------------------------------------------

STATUS_FILE = "status.json"  # state (queued | running | finished | failed | stopped | crashed), pid, times, message
CONFIG_FILE = "config.json"  # the TrainConfig as a dict
LOG_FILE = "log.txt"  # the trainer's output
PROGRESS_FILE = "progress.json"  # brainscan.training.progress.Progress after every epoch
HISTORY_FILE = "history.json"  # Keras history of the finished fit
METRICS_FILE = "metrics.json"  # scores of the held-out parts
ACTIVE_FILE = ".active.json"  # in runs/: the run in progress and its pid
LOCK_FILE = ".lock"  # in runs/: the flock that serialises start and stop
UPLOADS = "uploads"  # in runs/: uploaded datasets (not a run)
STAGING_DIR = ".model-new"  # training/run.py saves the model folder here, then moves its files up
# What a kill in the middle of a save leaves inside a run folder: the staging folder, save_model_folder's
# temporary sibling of it ('..model-new.tmp-*') and any other temporary sibling of modelfolder.replace_dir.
KILLED_SAVE_PATTERNS = (STAGING_DIR + "*", "." + STAGING_DIR + ".*", ".*.tmp-*", ".*.new-*", ".*.old-*")


def slugify(text: str, default: str = "run") -> str:
    """A name usable as (part of) a folder name: letters, digits, '.', '_' and '-', at most 48 characters."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-._")[:48]
    return slug or default


def is_run_dir(path: Path) -> bool:
    """A run folder (not runs/uploads, not a hidden leftover): it has status.json or config.json."""
    return path.is_dir() and not path.name.startswith(".") and path.name != UPLOADS and (
        (path / STATUS_FILE).is_file() or (path / CONFIG_FILE).is_file())


# --- status -----------------------------------------------------------------------------------

def read_status(run_dir: str | os.PathLike) -> dict:
    return read_json(Path(run_dir) / STATUS_FILE)


def update_status(run_dir: str | os.PathLike, **fields: Any) -> dict:
    """Merge fields into status.json (and stamp 'updated'); the file is replaced atomically. Returns the status.
    The one writer of status.json, for the trainer and the run manager alike."""
    path = Path(run_dir) / STATUS_FILE
    status = read_json(path)
    status.update(fields, updated=time.time())
    write_json(path, status)
    return status


# --- leftovers of a killed save -----------------------------------------------------------------

def remove_path(path: Path) -> None:
    """A file, link or folder gone (a folder with everything in it); already gone is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_killed_save(run_dir: str | os.PathLike) -> list[Path]:
    """Remove what a save killed half-way left in a run folder: the temporary folders (KILLED_SAVE_PATTERNS)
    and, when there is no card.json (written last, so no complete model), the model files moved so far.
    Returns what was removed. Only for a run that no longer runs."""
    run_dir = Path(run_dir)
    removed: list[Path] = []
    for pattern in KILLED_SAVE_PATTERNS:
        for left in sorted(run_dir.glob(pattern)):
            if left not in removed and (left.exists() or left.is_symlink()):
                remove_path(left)
                removed.append(left)
    if not (run_dir / CARD_FILE).is_file():
        for name in WEIGHT_FILES:
            if (run_dir / name).exists():
                remove_path(run_dir / name)
                removed.append(run_dir / name)
    return removed


# --- TrainConfig as a command line ----------------------------------------------------------------

FLAG_NAMES = {"learning_rate": "--lr", "time_limit_s": "--time-limit", "augment": "--no-augment"}
"""Flags that are not simply --field-name (for a bool field that defaults to True: the flag that turns it off)."""

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


@dataclasses.dataclass(frozen=True)
class TrainFlag:
    """One TrainConfig field on the command line of `python -m brainscan train`."""

    field: str  # the TrainConfig field
    flag: str  # its option, e.g. --img-size
    type: type  # int, float, str or bool (a bool is a switch: present means "not the default")
    default: Any  # the field's default; dataclasses.MISSING for data and out

    @property
    def dest(self) -> str:
        """The attribute argparse stores it under (--lr -> lr, --no-augment -> no_augment)."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


def _flags() -> tuple[TrainFlag, ...]:
    out = []
    for f in dataclasses.fields(TrainConfig):
        kind = _TYPES.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
        if kind is None:
            raise TypeError(f"TrainConfig.{f.name} has type {f.type}; the command line knows int, float, str, bool.")
        flag = FLAG_NAMES.get(f.name)
        if flag is None:
            stem = f.name.replace("_", "-")
            flag = f"--no-{stem}" if kind is bool and f.default is True else f"--{stem}"
        out.append(TrainFlag(f.name, flag, kind, f.default))
    return tuple(out)


TRAIN_FLAGS = _flags()


def train_argv(config: TrainConfig | Mapping[str, Any]) -> list[str]:
    """The arguments after `python -m brainscan train` for a TrainConfig, or a dict of some of its fields (the
    rest keep their defaults). Empty values (None, '') are left out, a switch appears only when it is not its
    default; every other value is written, in field order. A key that is no TrainConfig field is refused
    (ValueError) rather than dropped."""
    values = dataclasses.asdict(config) if isinstance(config, TrainConfig) else dict(config)
    unknown = sorted(set(values) - {f.field for f in TRAIN_FLAGS})
    if unknown:
        raise ValueError(f"Unknown training setting{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.")
    argv: list[str] = []
    for f in TRAIN_FLAGS:
        value = values.get(f.field)
        if value is None or value == "":
            continue
        if f.type is bool:
            if bool(value) != bool(f.default):
                argv.append(f.flag)
            continue
        text = str(value)
        argv += [f"{f.flag}={text}"] if text.startswith("-") else [f.flag, text]  # '-x' would read as an option
    return argv


def add_train_arguments(parser: argparse.ArgumentParser, options: Mapping[str, Mapping[str, Any]] | None = None) \
        -> None:
    """One option per TrainConfig field, with the field's default (data and out have none).
    options: extra argparse keywords per field (help, metavar, choices); its order is the order of --help, and
    fields it does not name follow in field order."""
    options = options or {}
    by_field = {f.field: f for f in TRAIN_FLAGS}
    unknown = sorted(set(options) - set(by_field))
    if unknown:
        raise ValueError(f"No TrainConfig field {', '.join(unknown)}.")
    for name in [*options, *(f.field for f in TRAIN_FLAGS if f.field not in options)]:
        f, extra = by_field[name], dict(options.get(name, {}))
        if f.type is bool:
            parser.add_argument(f.flag, dest=f.dest, action="store_true", **extra)  # present: not the default
        elif f.required:  # data and out: no default (the caller may make them required)
            parser.add_argument(f.flag, dest=f.dest, type=f.type, **extra)
        else:
            parser.add_argument(f.flag, dest=f.dest, type=f.type, default=f.default, **extra)


def config_from_args(args: argparse.Namespace | Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig of parsed arguments (add_train_arguments' options); a missing --data is ''."""
    values = vars(args) if isinstance(args, argparse.Namespace) else args
    cfg: dict[str, Any] = {}
    for f in TRAIN_FLAGS:
        value = values.get(f.dest)
        if f.type is bool:
            cfg[f.field] = (not f.default) if value else bool(f.default)
        elif value is None:
            cfg[f.field] = "" if f.type is str else f.default
        else:
            cfg[f.field] = value
    return TrainConfig(**cfg)


def parse_train_argv(argv: list[str]) -> TrainConfig:
    """The inverse of train_argv: parse_train_argv(train_argv(cfg)) == cfg (for a TrainConfig with data and out)."""
    parser = argparse.ArgumentParser(prog="brainscan train", add_help=False)
    add_train_arguments(parser)
    return config_from_args(parser.parse_args(argv))
