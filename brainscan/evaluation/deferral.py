"""Choosing the "uncertain: needs a human" threshold on validation, and the coverage / accuracy curves.

``python -m brainscan uncertainty MODEL --data DIR [--brats DIR] [--yes-no DIR --recipe TOML|--dedup-against DIR]``
runs every candidate score of brainscan.runtime.uncertainty on the model's validation split (the files split.json
lists, found under DIR), keeps the one with the smallest area under the risk-coverage curve there, sets the
threshold so that the chosen share of validation scans is answered (default 90%), and measures on the
deduplicated test split (4-class answer) and on each external set (tumour or not) how accuracy on the
answered scans rises as more are deferred. Everything goes into the model folder's uncertainty.json.
"""

from __future__ import annotations

import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np

from brainscan.modelfolder import read_json, write_json
from brainscan.runtime.inference import fresh_input
from brainscan.runtime.uncertainty import FILE, SIGNAL_LABELS, SIGNALS, VIEWS, view_probabilities

CURVE_POINTS = 41


def coverage_curve(correct: np.ndarray, score: np.ndarray, points: int = CURVE_POINTS) -> dict:
    """Accuracy on the answered scans when the most uncertain ones (highest score) are deferred, at coverages
    from 100% down to 5%; plus the area under the risk-coverage curve (AURC: lower is better)."""
    correct = np.asarray(correct, float)
    order = np.argsort(np.asarray(score, float), kind="stable")  # most certain first
    cum = np.cumsum(correct[order])
    n = len(correct)
    ks = np.arange(1, n + 1)
    acc_at_k = cum / ks
    coverages = np.linspace(1.0, 0.05, points)
    keep = np.maximum(1, np.rint(coverages * n).astype(int))
    return {"coverage": [float(k / n) for k in keep], "accuracy": [float(acc_at_k[k - 1]) for k in keep],
            "aurc": float(np.mean(1.0 - acc_at_k)), "n": int(n), "accuracy_all": float(correct.mean())}


def at_threshold(correct: np.ndarray, score: np.ndarray, threshold: float, flagged: np.ndarray | None = None) -> dict:
    """Coverage and accuracy on the answered scans at the threshold; with flagged (the unfamiliar-scan
    check), also when both signals defer."""
    correct, score = np.asarray(correct, bool), np.asarray(score, float)
    answered = score <= threshold
    out = {"coverage": float(answered.mean()),
           "accuracy_answered": float(correct[answered].mean()) if answered.any() else None,
           "accuracy_deferred": float(correct[~answered].mean()) if (~answered).any() else None}
    if flagged is not None:
        both = answered & ~np.asarray(flagged, bool)
        out["coverage_with_unfamiliar_check"] = float(both.mean())
        out["accuracy_answered_with_unfamiliar_check"] = float(correct[both].mean()) if both.any() else None
    return out


def _evaluate(model, paths: list[str], labels: list[str], binary: bool) -> dict:
    """Per scan: correctness (4-class, or tumour vs not) and every candidate score; the unfamiliar flags."""
    from brainscan.runtime.inference import predict_batch
    from brainscan.scans.batch import prepare_paths

    inputs, ok, _ = prepare_paths(paths, model.size)
    labels = [labels[i] for i in ok]
    probs = view_probabilities(model, inputs)
    flagged = np.array([p.out_of_distribution for s in range(0, len(inputs), 64)
                        for p in predict_batch(model, inputs[s : s + 64])], bool)
    classes = model.classes
    top = probs[:, 0].argmax(axis=1)
    if binary:
        said_tumour = np.array([classes[k] != "notumor" for k in top])
        correct = said_tumour == np.array([lab != "notumor" for lab in labels])
    else:
        correct = np.array([classes[k] == lab for k, lab in zip(top, labels, strict=True)])
    return {"correct": correct, "scores": {k: f(probs) for k, f in SIGNALS.items()}, "flagged": flagged}


def _split_files(model_dir: Path, data_dir: str, part: str) -> tuple[list[str], list[str]]:
    files = read_json(model_dir / "split.json")["files"][part]
    return [os.path.join(data_dir, f) for f in files], [Path(f).parent.name for f in files]


def _brats(root: str) -> dict[str, tuple[list[str], list[str]]]:
    with open(Path(root) / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for seq in sorted({r["sequence"] for r in rows}):
        sub = [r for r in rows if r["sequence"] == seq]
        out[f"brats_{seq}"] = ([str(Path(root) / r["image"]) for r in sub],
                               ["glioma" if r["label"] == "tumor" else "notumor" for r in sub])
    return out


def _yes_no(root: str, dedup_against: list[str] | str | None,
            cache_dir: str | Path | None = None) -> tuple[list[str], list[str], int]:
    """The yes/no images without near-duplicates of the training folders (the same rule as `external`)."""
    from brainscan.evaluation.external import yes_no_without_duplicates

    kept = yes_no_without_duplicates(root, dedup_against, cache_dir)
    return kept["paths"], kept["labels"], kept["removed"]


def tta_cost_ms(model, inputs: np.ndarray, repeats: int = 15) -> dict:
    """Median time of one prediction of one scan as is, and of all views of it (one batch)."""
    x = inputs[0]
    single, tta = [], []
    forget = fresh_input(model)  # time the network, not its one-input cache
    for _ in range(repeats):
        forget()
        t = time.perf_counter()
        model.features_and_logits(x[None])
        single.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        view_probabilities(model, x[None])
        tta.append(1000 * (time.perf_counter() - t))
    return {"predict_one_view_ms": statistics.median(single), f"predict_{len(VIEWS)}_views_ms": statistics.median(tta),
            "backend": getattr(model, "backend", "?")}


def fit_and_measure(model_dir: str, data_dir: str, coverage: float = 0.9, brats: str | None = None,
                    yes_no: str | None = None, dedup_against: list[str] | str | None = None,
                    cache_dir: str | Path | None = None, command: str = "") -> dict:
    from brainscan.runtime.inference import load_model
    from brainscan.scans.batch import prepare_paths

    folder = Path(model_dir)
    model = load_model(folder)
    val = _evaluate(model, *_split_files(folder, data_dir, "val"), binary=False)
    candidates = {k: coverage_curve(val["correct"], s)["aurc"] for k, s in val["scores"].items()}
    signal = min(candidates, key=candidates.get)
    val_score = val["scores"][signal]
    threshold = float(np.quantile(val_score, coverage, method="higher"))
    sets: dict[str, dict] = {"val": {**val, "what": "validation split (4-class answer)"}}
    sets["test_dedup"] = {**_evaluate(model, *_split_files(folder, data_dir, "test_dedup"), binary=False),
                          "what": "deduplicated test split (4-class answer)"}
    if brats:
        for key, (paths, labels) in _brats(brats).items():
            sets[key] = {**_evaluate(model, paths, labels, binary=True),
                         "what": f"BRATS 2013 {key.split('_', 1)[1].upper()} slices (tumour vs tumour-free)"}
    if yes_no:
        paths, labels, removed = _yes_no(yes_no, dedup_against, cache_dir)
        sets["yes_no_dedup"] = {**_evaluate(model, paths, labels, binary=True),
                                "what": f"navoneel yes/no without {removed} near-duplicates of the training data "
                                        "(tumour vs not)"}
    result = {"signal": signal, "signal_label": SIGNAL_LABELS[signal], "threshold": threshold,
              "target_coverage_on_val": coverage, "views": [v[0] for v in VIEWS],
              "chosen_by": "smallest area under the risk-coverage curve (AURC) on the validation split; threshold "
                           f"= the score that leaves {coverage:.0%} of validation scans answered",
              "candidates_val_aurc": candidates, "sets": {}, "command": command}
    for key, s in sets.items():
        result["sets"][key] = {
            "what": s["what"], "n": int(len(s["correct"])),
            "curve": coverage_curve(s["correct"], s["scores"][signal]),
            "aurc_per_signal": {k: coverage_curve(s["correct"], v)["aurc"] for k, v in s["scores"].items()},
            "at_threshold": at_threshold(s["correct"], s["scores"][signal], threshold, s["flagged"]),
        }
    sample = prepare_paths(_split_files(folder, data_dir, "test_dedup")[0][:1], model.size)[0]
    result["cost"] = tta_cost_ms(model, sample)
    write_json(folder / FILE, result)
    card_path = folder / "card.json"
    card = read_json(card_path)
    card["uncertainty"] = {"signal": signal, "threshold": threshold,
                           "test_dedup": result["sets"]["test_dedup"]["at_threshold"]}
    write_json(card_path, card)
    return result


def summary_lines(result: dict) -> list[str]:
    lines = [f"signal {result['signal']} ({result['signal_label']}), threshold {result['threshold']:.4f}",
             "validation AURC per candidate: " + ", ".join(f"{k} {v:.4f}" for k, v in
                                                          result["candidates_val_aurc"].items())]
    for key, s in result["sets"].items():
        t, c = s["at_threshold"], s["curve"]
        acc = t["accuracy_answered"]
        lines.append(f"{key:<14} n={s['n']:<4} accuracy all {c['accuracy_all']:.3f} -> answered "
                     f"{'n/a' if acc is None else f'{acc:.3f}'} at coverage {t['coverage']:.3f}; AURC "
                     + ", ".join(f"{k} {v:.3f}" for k, v in s["aurc_per_signal"].items()))
    cost = result["cost"]
    n = len(result["views"])
    key = f"predict_{n}_views_ms"
    lines.append(f"cost: one view {cost['predict_one_view_ms']:.1f} ms, {n} views "
                 f"{cost[key]:.1f} ms ({cost['backend']})")
    return lines
