"""The model card as Markdown (models/<name>/MODEL_CARD.md), rendered from card.json. No TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def render_markdown(card: dict, files: list[str] | None = None) -> str:
    lines = [f"# Model card: {card.get('name', 'model')}", "",
             "Research and teaching demo, not a medical device.", "",
             "## What it is", "",
             f"- Architecture: {card.get('architecture')} ({card.get('parameters', 0):,} parameters), "
             f"input {card.get('input_size')}x{card.get('input_size')} grayscale",
             f"- Classes: {', '.join(card.get('classes', []))}",
             f"- Preprocessing: {card.get('preprocessing')}"]
    if files:
        runtime = ("model.tflite through LiteRT, CAMs in closed form from its last feature map"
                   if "model.tflite" in files else "model.keras through Keras, CAMs through tf-keras-vis")
        lines.append(f"- Files: {', '.join(files)}; the app and the command line run {runtime}")
    td = card.get("training_data", {})
    sp = card.get("split", {})
    tr = card.get("training", {})
    lines += ["", "## Training data and split", "",
              f"- Data: {td.get('folder')} ({td.get('images')} images: {td.get('counts')})",
              f"- Split: {sp.get('method')}",
              f"- Sizes: train {sp.get('train')}, validation {sp.get('val')}, "
              f"deduplicated test {sp.get('test_dedup')}, official Testing {sp.get('official_test')}",
              f"- Official Testing images with a near-duplicate in Training: "
              f"{sp.get('official_test_with_near_duplicate_in_training')} of {sp.get('official_test')}",
              f"- Training: {tr.get('epochs_run')} epochs (max {tr.get('epochs_max')}), batch {tr.get('batch_size')}, "
              f"learning rate {tr.get('learning_rate')}, augmentation {tr.get('augmentation')}, "
              f"{tr.get('seconds')} s on {tr.get('machine')}",
              f"- Command: `{tr.get('command')}`"]
    cal = card.get("calibration", {})
    lines += ["", "## Scores", "",
              "| set | n | accuracy | tumor ROC AUC | sensitivity at 95% specificity | ECE | flagged unfamiliar |",
              "|---|---|---|---|---|---|---|"]
    names = {"test_dedup": "deduplicated test (headline)", "official_test": "official Testing (leaky)",
             "val": "validation"}
    for key in ("test_dedup", "official_test", "val"):
        s = card.get("scores", {}).get(key)
        if s:
            lines.append(f"| {names[key]} | {s['n']} | {_pct(s['accuracy'])} | {_num(s.get('tumor_roc_auc'))} | "
                         f"{_pct(s.get('sensitivity_at_95_specificity'))} | {_num(s['ece'])} | "
                         f"{_pct(s.get('flagged_unfamiliar'))} |")
    lines += ["", f"Calibration: temperature {_num(cal.get('temperature'))} fitted on the validation split; ECE on the "
                  f"deduplicated test set {_num(cal.get('ece_before'))} before, {_num(cal.get('ece_after'))} after."]
    if card.get("unfamiliar_check"):
        lines += ["", f"Unfamiliar-scan check: {card['unfamiliar_check']}."]
    ext = card.get("external", {})
    if ext:
        lines += ["", "## Other sources (never trained on)", "",
                  "| set | n | tumor ROC AUC | accuracy | F1 | Grad-CAM pointing game | flagged unfamiliar |",
                  "|---|---|---|---|---|---|---|"]
        for key, s in ext.items():
            lines.append(f"| {key} | {s.get('n')} | {_num(s.get('tumor_roc_auc'))} | {_pct(s.get('accuracy'))} | "
                         f"{_num(s.get('f1'))} | {_pct(s.get('pointing_game_hit_rate'))} | "
                         f"{_pct(s.get('flagged_unfamiliar'))} |")
    if card.get("limitations"):
        lines += ["", "## Limitations", ""] + [f"- {x}" for x in card["limitations"]]
    return "\n".join(lines) + "\n"


def write_markdown(model_dir: str | Path) -> Path:
    folder = Path(model_dir)
    card = json.loads((folder / "card.json").read_text())
    out = folder / "MODEL_CARD.md"
    files = [n for n in ("model.keras", "model.tflite", "head.npz") if (folder / n).is_file()]
    out.write_text(render_markdown(card, files))
    return out
