"""The model folder, a leaf of the package: file names, the typed model card, read / write / find,
atomic JSON files and the atomic swap of a whole folder; and the card as Markdown (MODEL_CARD.md).

A model folder holds ``model.keras`` (outputs logits), ``card.json`` (classes, input size,
preprocessing, temperature, training data, split, scores), optionally ``model.tflite`` + ``head.npz``
(the LiteRT runtime, brainscan.runtime.lite) and ``ood.npz`` (statistics of the unfamiliar-scan
check), plus metrics files for the Model page. Imports only brainscan.config and brainscan.errors;
no TensorFlow.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TypedDict

import numpy as np

from brainscan import config
from brainscan.comparison import comparison_heading, comparison_markdown, read_comparison
from brainscan.errors import ModelError
from brainscan.formatting import number

CARD_FILE = "card.json"
KERAS_FILE = "model.keras"
LITE_FILE = "model.tflite"
HEAD_FILE = "head.npz"
OOD_FILE = "ood.npz"
MARKDOWN_FILE = "MODEL_CARD.md"
FEATURES_LAYER = "features"  # the global pooling layer every saved network has (its output: pooled features)
MODEL_FILES = (KERAS_FILE, CARD_FILE)  # required in a promoted folder
EXTRA_FILES = (LITE_FILE, HEAD_FILE, OOD_FILE, "metrics.json", "history.json", "split.json", "config.json",
               "external.json")
WEIGHT_FILES = (KERAS_FILE, LITE_FILE, HEAD_FILE, OOD_FILE)  # written by a training run before card.json


class ModelCard(TypedDict, total=False):
    """card.json, as training writes it (every key optional to a reader; old cards lack some)."""

    name: str
    architecture: str
    classes: list[str]
    input_size: int
    input_channels: int
    parameters: int
    preprocessing: str
    training_data: dict
    split: dict
    training: dict
    calibration: dict  # {"method", "temperature", "ece_before", "ece_after"}
    scores: dict  # per split: n, accuracy, ece, tumor_roc_auc, ...
    unfamiliar_check: str
    external: dict
    limitations: list[str]


class CardFields:
    """What both model kinds (runtime.lite.LiteModel, runtime.keras_model.LoadedModel) read from their card."""

    card: ModelCard
    path: Path

    @property
    def classes(self) -> list[str]:
        return list(self.card["classes"])

    @property
    def size(self) -> int:
        return int(self.card["input_size"])

    @property
    def temperature(self) -> float:
        return float(self.card.get("calibration", {}).get("temperature", 1.0))

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.path.name))

    @property
    def tumor_threshold(self) -> float | None:
        """P(tumor) at or above which the answer is a tumor class (chosen on validation for a target
        sensitivity); None for older cards, which answer with the most probable class."""
        value = self.card.get("operating_threshold", {}).get("tumor_probability")
        return None if value is None else float(value)


# --- atomic files ------------------------------------------------------------------------------

def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def write_json(path: str | os.PathLike, obj: dict) -> None:
    """Write to a hidden temporary file beside path, then rename over it (NumPy values allowed), so that
    readers (the Train page, the app) never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_default))
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> dict:
    """The JSON object in path, or {} when it is missing, unreadable or not an object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


# --- crash-safe folder replacement ------------------------------------------------------------
# Used to save (training) and to promote (runs) model folders.
#
# A folder is written beside its destination under a hidden temporary name (``.<name>.new-*`` or
# ``.<name>.tmp-*``), every file and the folder are fsynced, and then one step puts it in place:
#
# * Linux: ``renameat2(RENAME_EXCHANGE)`` swaps the new folder and the old one atomically (readers see the
#   old folder or the new one, never none); the old content, now under the temporary name, is removed.
# * elsewhere, or where the filesystem refuses the exchange (or BRAINSCAN_NO_EXCHANGE=1): the old folder is
#   renamed aside to ``.<name>.old-*``, the new one renamed in, and the old one removed.
#
# A kill at any point leaves either the complete old folder or the complete new one at the destination, plus
# hidden leftovers that :func:`recover` removes (putting an old folder back if the kill fell between the two
# renames of the fallback). Call recover before reading or replacing (promote, app start, janitor).
#
# For tests, BRAINSCAN_CRASH_AT=<step> makes the process exit at once (os._exit, no clean-up) at that step:
# ``written``, ``synced``, ``exchanged``, ``moved-aside``, ``renamed``.

CRASH_ENV = "BRAINSCAN_CRASH_AT"
NO_EXCHANGE_ENV = "BRAINSCAN_NO_EXCHANGE"
TEMP_MARKERS = (".new-", ".tmp-", ".old-")


def crash_point(step: str) -> None:
    """Exit without any clean-up when BRAINSCAN_CRASH_AT names this step (kill tests)."""
    if os.environ.get(CRASH_ENV) == step:
        os._exit(97)


def fsync_dir(path: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(path: str | os.PathLike) -> None:
    """fsync every file under path, then every folder (bottom up), so that a rename publishes durable data."""
    dirs = []
    for dirpath, _, files in os.walk(path):
        dirs.append(dirpath)
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in reversed(dirs):
        fsync_dir(d)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2 RENAME_EXCHANGE); False where unavailable."""
    if sys.platform != "linux" or os.environ.get(NO_EXCHANGE_ENV) == "1":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0


def temp_sibling(dst: Path, kind: str = "new") -> Path:
    """A fresh hidden name beside dst that recover() knows to clean: .<name>.<kind>-<pid>-<ns>."""
    return dst.with_name(f".{dst.name}.{kind}-{os.getpid()}-{time.monotonic_ns()}")


def replace_dir(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Put the complete folder src at dst (see the module docstring); src must be a sibling of dst."""
    src, dst = Path(src), Path(dst)
    fsync_tree(src)
    crash_point("synced")
    if dst.exists() and _exchange(src, dst):
        crash_point("exchanged")
        fsync_dir(dst.parent)
        shutil.rmtree(src, ignore_errors=True)  # the old content, now under the temporary name
        return
    old = None
    if dst.exists():
        old = temp_sibling(dst, "old")
        os.replace(dst, old)
        crash_point("moved-aside")
    try:
        os.replace(src, dst)
    except OSError:
        if old is not None:
            os.replace(old, dst)
        raise
    crash_point("renamed")
    fsync_dir(dst.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def leftovers(dst: str | os.PathLike) -> list[Path]:
    """The hidden temporary siblings of dst that a replace may have left."""
    dst = Path(dst)
    if not dst.parent.is_dir():
        return []
    prefix = f".{dst.name}."
    return sorted(p for p in dst.parent.iterdir()
                  if p.name.startswith(prefix) and any(m in p.name[len(prefix) - 1:] for m in TEMP_MARKERS))


def recover(dst: str | os.PathLike) -> list[str]:
    """Finish what a killed replace_dir left: if dst is missing, the newest '.old-' folder goes back; then every
    temporary sibling is removed. Returns what was done, for logs and tests."""
    dst = Path(dst)
    done: list[str] = []
    if not dst.exists():
        olds = [p for p in leftovers(dst) if ".old-" in p.name]
        if olds:
            newest = max(olds, key=lambda p: p.stat().st_mtime_ns)
            os.replace(newest, dst)
            fsync_dir(dst.parent)
            done.append(f"restored {dst.name} from {newest.name}")
    for p in leftovers(dst):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
        done.append(f"removed {p.name}")
    return done


def recover_all(parent: str | os.PathLike) -> list[str]:
    """recover() for every folder under parent that has temporary siblings (e.g. models/)."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    names = set()
    for p in parent.iterdir():
        if p.name.startswith(".") and any(m in p.name for m in TEMP_MARKERS):
            base = p.name[1:]
            for m in TEMP_MARKERS:
                if m in base:
                    names.add(base[: base.index(m)])
                    break
    done: list[str] = []
    for name in sorted(names):
        if name:
            done += recover(parent / name)
    return done


# --- finding and reading a model folder -------------------------------------------------------

def find_model_dir() -> Path | None:
    """The default model folder, or None: $BRAINSCAN_MODEL, else <models>/default, else the first
    <models>/*/card.json, where <models> is $BRAINSCAN_MODELS_DIR or the repository's models/."""
    env = os.environ.get(config.MODEL_ENV)
    if env:
        path = Path(env)
        return path.parent if path.is_file() else path
    root = config.models_dir()
    if not (root / "default").is_dir():
        recover_all(root)  # a promote killed between its two renames: put the old model back
    if (root / "default" / CARD_FILE).is_file():
        return root / "default"
    found = sorted(p.parent for p in root.glob(f"*/{CARD_FILE}"))
    return found[0] if found else None


def find_default_model() -> Path:
    """find_model_dir(), or a ModelError that says how to get a model."""
    found = find_model_dir()
    if found is None:
        raise ModelError(f"No model found in {config.models_dir()}: name a model folder with --model or "
                         f"${config.MODEL_ENV} (the repository's models/default is the shipped one), or train one "
                         "with `python -m brainscan train`.")
    return found


def read_folder(path: str | os.PathLike | None) -> tuple[Path, ModelCard, dict[str, np.ndarray]]:
    """(folder, card, ood statistics) of a model folder; the default model when path is None."""
    folder = Path(path) if path else find_default_model()
    if folder.is_file():
        folder = folder.parent
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise ModelError(f"{folder} is not a model folder (it needs card.json and model.keras or model.tflite).")
    try:
        card = json.loads(card_path.read_text())
        ood = dict(np.load(folder / OOD_FILE)) if (folder / OOD_FILE).is_file() else {}
    except (OSError, ValueError) as err:
        raise ModelError(f"Could not read the model folder {folder}: {err}") from err
    return folder, card, ood


def has_lite_files(folder: Path) -> bool:
    return (folder / LITE_FILE).is_file() and (folder / HEAD_FILE).is_file()


# --- the card as Markdown ---------------------------------------------------------------------


def _pct(v) -> str:
    return number(v, "pct")


def _num(v, digits: int = 3) -> str:
    return number(v, digits=digits)


def render_markdown(card: ModelCard, files: list[str] | None = None) -> str:
    lines = [f"# Model card: {card.get('name', 'model')}", "",
             "Research and teaching demo, not a medical device.", "",
             "## What it is", "",
             f"- Architecture: {card.get('architecture')} ({card.get('parameters', 0):,} parameters), "
             f"input {card.get('input_size')}x{card.get('input_size')} grayscale",
             f"- Classes: {', '.join(card.get('classes', []))}",
             f"- Preprocessing: {card.get('preprocessing')}"]
    if files:
        runtime = ("model.tflite through LiteRT, CAMs in closed form from its last feature map"
                   if LITE_FILE in files else "model.keras through Keras, CAMs through tf-keras-vis")
        lines.append(f"- Files: {', '.join(files)}; the app and the command line run {runtime}")
    td = card.get("training_data", {})
    sp = card.get("split", {})
    tr = card.get("training", {})
    lines += ["", "## Training data and split", ""] + _data_lines(td, sp) + [
              f"- Training: {tr.get('epochs_run')} epochs (max {tr.get('epochs_max')}), batch {tr.get('batch_size')}, "
              f"learning rate {tr.get('learning_rate')}, augmentation {tr.get('augmentation')}, "
              f"{tr.get('seconds')} s on {tr.get('machine')}",
              f"- Command: `{tr.get('command')}`"]
    cal = card.get("calibration", {})
    lines += ["", "## Scores", "",
              "| set | n | accuracy | tumor ROC AUC | sensitivity at 95% specificity | ECE | flagged unfamiliar |",
              "|---|---|---|---|---|---|---|"]
    names = {"test_dedup": "brain-tumor-mri deduplicated test (headline)", "official_test": "official Testing (leaky)",
             "test": "test, all sources", "institution_holdout": "lgg-tcga institution never trained on",
             "val": "validation"}
    for key in names:
        s = card.get("scores", {}).get(key)
        if s:
            lines.append(f"| {names[key]} | {s['n']} | {_pct(s['accuracy'])} | {_num(s.get('tumor_roc_auc'))} | "
                         f"{_pct(s.get('sensitivity_at_95_specificity'))} | {_num(s['ece'])} | "
                         f"{_pct(s.get('flagged_unfamiliar'))} |")
    lines += ["", f"Calibration: temperature {_num(cal.get('temperature'))} fitted on the validation split; ECE on the "
                  f"deduplicated test set {_num(cal.get('ece_before'))} before, {_num(cal.get('ece_after'))} after."]
    op = card.get("operating_threshold")
    if op:
        lines += ["", "Operating threshold: a scan is called a tumor when P(tumor) >= "
                      f"{_num(op.get('tumor_probability'))}, chosen on the validation split for sensitivity >= "
                      f"{_pct(op.get('target_sensitivity'))} "
                      f"(validation sensitivity {_pct(op.get('sensitivity'))}, specificity "
                      f"{_pct(op.get('specificity'))})."]
    for part, cells in card.get("scores_by_source", {}).items():
        if part not in ("test", "institution_holdout"):
            continue
        lines += ["", f"### By source and sequence: {names.get(part, part)}", "",
                  "| source / sequence | n | tumors | 4-class accuracy | tumor ROC AUC | called tumor | sensitivity / "
                  "specificity at the threshold |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {k} | {c['n']} | {c['n_tumor']} | {_pct(c['accuracy'])} | {_num(c.get('tumor_roc_auc'))} | "
                  f"{_pct(c.get('called_tumor'))} | "
                  + (f"{_pct(c['sensitivity'])} / {_pct(c['specificity'])} |" if "sensitivity" in c else "n/a |")
                  for k, c in cells.items()]
    if card.get("unfamiliar_check"):
        lines += ["", f"Unfamiliar-scan check: {card['unfamiliar_check']}."]
    ext = card.get("external", {})
    if ext:
        lines += ["", "## Other sources and held-out patients", "",
                  "| set | n | tumor ROC AUC | sensitivity | specificity | accuracy | pointing game "
                  "(brightest spot / random point) | flagged unfamiliar |",
                  "|---|---|---|---|---|---|---|---|"]
        for key, e in ext.items():
            pointing = _pct(e.get("pointing_game_hit_rate"))
            if e.get("pointing_baseline_brightest") is not None:
                pointing += (f" ({_pct(e.get('pointing_baseline_brightest'))} / "
                             f"{_pct(e.get('pointing_baseline_random'))})")
            lines.append(f"| {key} | {e.get('n')} | {_num(e.get('tumor_roc_auc'))} | {_pct(e.get('sensitivity'))} | "
                         f"{_pct(e.get('specificity'))} | {_pct(e.get('accuracy'))} | {pointing} | "
                         f"{_pct(e.get('flagged_unfamiliar'))} |")
        heat = card.get("pointing_heatmap")
        if heat:
            lines += ["", f"Pointing game: the peak of the {heat['label']} heatmap of the likeliest tumour class"
                          + (f", or of {heat['when_empty_label']} where that map is empty" if heat.get("when_empty")
                             else "")
                          + ", counts as a hit inside the tumour outline."]
    if card.get("limitations"):
        lines += ["", "## Limitations", ""] + [f"- {x}" for x in card["limitations"]]
    return "\n".join(lines) + "\n"


def _data_lines(td: dict, sp: dict) -> list[str]:
    if "recipe" in td:  # several sources (brainscan.scans.recipe)
        nd = td.get("near_duplicates", {})
        out = [f"- Recipe `{td['recipe']}`: {td.get('images')} images from {', '.join(td.get('sources', {}))}",
               *[f"  - {src}: {cells}" for src, cells in td.get("counts", {}).items()],
               f"- Near-duplicates: {sum(nd.get('proposed', {}).values())} pairs across sources or patients "
               f"proposed by pHash (Hamming <= "
               f"{nd.get('max_bits')}), {sum(nd.get('confirmed', {}).values())} confirmed by pixel correlation "
               f"(>= {nd.get('min_correlation')} across sources, >= {nd.get('min_correlation_within_source')} "
               "across patients of one source)",
               f"- Sampling: {td.get('sampling')}",
               f"- Split: {sp.get('method')}",
               f"- Inputs per part: {sp.get('inputs_per_part')}; blank slices left out: "
               f"{sp.get('blank_slices_left_out')}; institution held out: {sp.get('holdout_institution')}"]
        return out
    return [f"- Data: {td.get('folder')} ({td.get('images')} images: {td.get('counts')})",
            f"- Split: {sp.get('method')}",
            f"- Sizes: train {sp.get('train')}, validation {sp.get('val')}, "
            f"deduplicated test {sp.get('test_dedup')}, official Testing {sp.get('official_test')}",
            f"- Official Testing images with a near-duplicate in Training: "
            f"{sp.get('official_test_with_near_duplicate_in_training')} of {sp.get('official_test')}"]


def write_markdown(model_dir: str | Path) -> Path:
    folder = Path(model_dir)
    card = json.loads((folder / CARD_FILE).read_text())
    out = folder / MARKDOWN_FILE
    files = [n for n in (KERAS_FILE, LITE_FILE, HEAD_FILE) if (folder / n).is_file()]
    text = render_markdown(card, files)
    result = read_comparison(folder)
    if result is not None:
        text += "\n".join(["", f"## {comparison_heading(result, card.get('name', ''))}", "",
                            *comparison_markdown(result), ""])
    out.write_text(text)
    return out
