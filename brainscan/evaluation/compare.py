"""Two model folders side by side on one table of targets (issue #21's table): the stored comparison that the
Model page shows and the README quotes.

``python -m brainscan compare OLD NEW --recipe recipes/v4.toml --data-root ../shared/data [--bench]`` measures
both models with the same code: figures that need the model's own split (the institution never trained on,
pooled and per sequence, at the model's operating threshold; the deduplicated brain-tumor-mri test; the
tumour-free MS heads; the validation answer of one view against the mean of the 8 test-time views) are computed
here by running each model on its split.json parts; the external sets and pointing games come from each card
(``python -m brainscan external``, run on both with the same recipe). The result is written as
``comparison.json`` into NEW (and wherever --out says; brainscan.comparison reads it). No TensorFlow here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainscan.comparison import FILE
from brainscan.evaluation.metrics import binary_metrics, classification_metrics
from brainscan.modelfolder import write_json, write_markdown
from brainscan.training.prepare import BLANK_STD  # blank slices are left out of every part, as in training


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    goal: float
    higher_is_better: bool = True

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.goal if self.higher_is_better else value <= self.goal


TARGETS: tuple[Target, ...] = (
    Target("lgg_ht_auc_flair", "lgg-tcga institution HT: tumour ROC AUC, FLAIR", 0.95),
    Target("lgg_ht_auc_t1", "lgg-tcga institution HT: tumour ROC AUC, T1", 0.95),
    Target("lgg_ht_auc_t1c", "lgg-tcga institution HT: tumour ROC AUC, contrast T1", 0.95),
    Target("lgg_ht_auc_pooled", "lgg-tcga institution HT: tumour ROC AUC, sequences pooled", 0.95),
    Target("lgg_ht_sensitivity", "lgg-tcga institution HT, pooled: sensitivity at the operating threshold", 0.95),
    Target("lgg_ht_specificity", "lgg-tcga institution HT, pooled: specificity at the operating threshold", 0.85),
    Target("brats_auc_flair", "BRATS 2013: tumour ROC AUC, FLAIR", 0.95),
    Target("brats_auc_t1c", "BRATS 2013: tumour ROC AUC, contrast T1", 0.95),
    Target("brats_pointing_flair", "BRATS 2013: pointing game, FLAIR", 0.80),
    Target("brats_pointing_t1c", "BRATS 2013: pointing game, contrast T1", 0.65),
    Target("lgg_ht_pointing_flair", "lgg-tcga institution HT: pointing game, FLAIR", 0.70),
    Target("lgg_ht_pointing_t1", "lgg-tcga institution HT: pointing game, T1", 0.70),
    Target("lgg_ht_pointing_t1c", "lgg-tcga institution HT: pointing game, contrast T1", 0.70),
    Target("btm_pointing_glioma", "brain-tumor-mri deduplicated test: pointing game, glioma", 0.80),
    Target("btm_pointing_meningioma", "brain-tumor-mri deduplicated test: pointing game, meningioma", 0.80),
    Target("btm_pointing_pituitary", "brain-tumor-mri deduplicated test: pointing game, pituitary", 0.80),
    Target("yes_no_accuracy", "navoneel yes/no without near-duplicates: accuracy", 0.90),
    Target("btm_accuracy", "brain-tumor-mri deduplicated test: 4-class accuracy", 0.95),
    Target("btm_ece", "brain-tumor-mri deduplicated test: ECE", 0.03, higher_is_better=False),
    Target("ms_called_tumour", "ms-ljubljana test patients (MS, no tumour): called tumour", 0.05,
           higher_is_better=False),
    Target("speedup_vs_vgg19", "bench: scan check, times faster than VGG19's predict", 20.0),
    Target("model_mb", "model file (model.tflite), MB", 10.0, higher_is_better=False),
)


def item_index(recipe_path: str, data_root: str | None) -> dict[str, tuple[str, str, str]]:
    """Every recipe item by its path relative to the data root: (class, source, sequence)."""
    from brainscan.scans.recipe import load_recipe, source_items

    recipe = load_recipe(recipe_path, data_root)
    out = {}
    for src in recipe.sources:
        for it in source_items(src, {}):
            out[os.path.relpath(it.path, recipe.data_root)] = (it.label, it.source, it.sequence)
    return out


def part_inputs(model, model_dir: Path, data_root: Path, part: str, index: dict) -> tuple[np.ndarray, list]:
    """The model inputs of one split part (split.json) that the recipe knows, blank slices left out, and each
    one's (class, source, sequence)."""
    from brainscan.scans.batch import prepare_paths

    files = [f for f in json.loads((model_dir / "split.json").read_text())["files"].get(part, []) if f in index]
    x, ok, _ = prepare_paths([str(data_root / f) for f in files], model.size)
    keep = x.reshape(len(x), -1).std(axis=1) > BLANK_STD if len(x) else np.zeros(0, bool)
    return x[keep], [index[files[i]] for i, k in zip(ok, keep, strict=True) if k]


def probabilities(model, x: np.ndarray) -> np.ndarray:
    from brainscan.runtime.inference import softmax

    logits = [model.features_and_logits(x[s : s + 64])[1] for s in range(0, len(x), 64)]
    return softmax(np.concatenate(logits), model.temperature) if logits else np.zeros((0, len(model.classes)))


def measured_figures(model_dir: str | os.PathLike, recipe: str, data_root: str, index: dict | None = None) -> dict:
    """The figures of the table that need the model's split, by running the model (LiteRT) on it. index: the
    recipe's item_index, when the caller already has it."""
    from brainscan.runtime.inference import load_model
    from brainscan.runtime.uncertainty import view_probabilities

    folder, root = Path(model_dir), Path(data_root)
    model = load_model(folder)
    classes, notumor = list(model.classes), list(model.classes).index("notumor")
    threshold = float(model.tumor_threshold)
    index = index if index is not None else item_index(recipe, data_root)
    out: dict = {"threshold": threshold}

    x, meta = part_inputs(model, folder, root, "institution_holdout", index)
    p_tumor = 1.0 - probabilities(model, x)[:, notumor]
    is_tumor = np.array([m[0] != "notumor" for m in meta])
    for seq in ("flair", "t1", "t1c"):
        m = np.array([s == seq for _, _, s in meta])
        out[f"lgg_ht_auc_{seq}"] = binary_metrics(is_tumor[m].astype(int), p_tumor[m])["roc_auc"]
    out["lgg_ht_auc_pooled"] = binary_metrics(is_tumor.astype(int), p_tumor)["roc_auc"]
    out["lgg_ht_sensitivity"] = float(np.mean(p_tumor[is_tumor] >= threshold))
    out["lgg_ht_specificity"] = float(np.mean(p_tumor[~is_tumor] < threshold))
    out["lgg_ht_n"] = int(len(meta))

    x, meta = part_inputs(model, folder, root, "test_dedup", index)
    m = classification_metrics(np.array([classes.index(c) for c, _, _ in meta]), probabilities(model, x), classes)
    out.update(btm_accuracy=m["accuracy"], btm_ece=m["ece"], btm_n=m["n"])

    x, meta = part_inputs(model, folder, root, "test", index)
    ms = np.array([src == "ms-ljubljana-slices" for _, src, _ in meta])
    out["ms_called_tumour"] = float(np.mean(1.0 - probabilities(model, x[ms])[:, notumor] >= threshold))
    out["ms_n"] = int(ms.sum())

    # The answer of one view against the mean of the 8 test-time views the uncertainty already computes.
    x, meta = part_inputs(model, folder, root, "val", index)
    y = np.array([classes.index(c) for c, _, _ in meta])
    views = view_probabilities(model, x)  # n x 8 x classes
    for name, p in (("one_view", views[:, 0]), ("mean_of_views", views.mean(axis=1))):
        m = classification_metrics(y, p, classes)
        nll = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
        out[f"val_{name}"] = {"accuracy": m["accuracy"], "ece": m["ece"], "nll": nll,
                              "tumor_roc_auc": m["tumor_vs_notumor"]["roc_auc"]}
    out["model_mb"] = round((folder / "model.tflite").stat().st_size / 2**20, 2) \
        if (folder / "model.tflite").is_file() else None
    return out


def card_figures(model_dir: str | os.PathLike) -> dict:
    """The table's figures stored in the card by `python -m brainscan external`."""
    return card_figures_from(json.loads((Path(model_dir) / "card.json").read_text()).get("external", {}))


def card_figures_from(ext: dict) -> dict:
    def get(key: str, field: str) -> float | None:
        return (ext.get(key) or {}).get(field)

    out = {f"brats_auc_{s}": get(f"brats_{s}", "tumor_roc_auc") for s in ("flair", "t1c")}
    out.update({f"brats_pointing_{s}": get(f"brats_{s}", "pointing_game_hit_rate") for s in ("flair", "t1c")})
    out.update({f"lgg_ht_pointing_{s}": get(f"lgg_institution_holdout_{s}_pointing", "pointing_game_hit_rate")
                for s in ("flair", "t1", "t1c")})
    out.update({f"btm_pointing_{c}": get(f"btm_test_dedup_{c}_pointing", "pointing_game_hit_rate")
                for c in ("glioma", "meningioma", "pituitary")})
    out["yes_no_accuracy"] = get("yes_no_dedup", "accuracy")
    return out


def compare(old: str, new: str, recipe: str, data_root: str, extra: dict | None = None) -> dict:
    """Both models' figures and, per target, which one meets it and which one is better. extra: more figures per
    model, {"old": {...}, "new": {...}} (the CLI's --bench adds speedup_vs_vgg19)."""
    figures = {}
    index = item_index(recipe, data_root)  # one listing of the recipe labels both models' split files
    for role, folder in (("old", old), ("new", new)):
        card = json.loads((Path(folder) / "card.json").read_text())
        figures[role] = {"name": card.get("name", Path(folder).name), **card_figures(folder),
                         **measured_figures(folder, recipe, data_root, index)}
    for role, more in (extra or {}).items():
        figures[role].update(more)
    rows = []
    for t in TARGETS:
        a, b = figures["old"].get(t.key), figures["new"].get(t.key)
        better = None if a is None or b is None else (b > a if t.higher_is_better else b < a)
        rows.append({"key": t.key, "label": t.label, "goal": t.goal, "higher_is_better": t.higher_is_better,
                     "old": a, "new": b, "old_met": t.met(a), "new_met": t.met(b), "new_better": better})
    return {"old": figures["old"], "new": figures["new"], "rows": rows,
            "command": f"python -m brainscan compare {old} {new} --recipe {recipe} --data-root {data_root}"
                       + (" --bench" if extra and "speedup_vs_vgg19" in extra.get("new", {}) else "")}


def write(result: dict, new: str, out: str | None = None) -> None:
    """comparison.json into the new model's folder (and `out`); its MODEL_CARD.md gains the table."""
    write_json(Path(new) / FILE, result)
    if (Path(new) / "card.json").is_file():
        write_markdown(new)
    if out:
        write_json(Path(out), result)
