"""Model and metrics: the model card and the evaluation figures saved with the model in use.

Reads card.json, metrics.json and history.json from the model folder; never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from brainscan.app import figures, source_table, ui
from brainscan.app import teaching as ui_teaching
from brainscan.app.metrics_panel import metrics_panel
from brainscan.comparison import comparison_heading, comparison_rows, read_comparison

SPLITS = {
    "test_dedup": ("Test, deduplicated",
                   "Held-out test images with no near-duplicate in the training data: the fairest estimate."),
    "official_test": ("Official test folder",
                      "The data set's own Testing folder. Many of its images have near-duplicates in the training "
                      "data, so these figures are optimistic."),
    "test": ("Test, all sources",
             "Held-out patients of every training source (split by patient and near-duplicate group)."),
    "institution_holdout": ("lgg-tcga, unseen institution",
                            "Every patient of one lgg-tcga-slices institution, never trained on: a hospital the "
                            "model has not seen."),
    "val": ("Validation",
            "Images used to choose the training epoch and to fit the calibration; slightly optimistic."),
}


def _cell(value: object) -> str:
    """One table cell as text (a column mixing numbers and blanks cannot be sent to the browser as a table)."""
    if isinstance(value, float):
        return ui.fmt_number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return ui.fmt_number(value, "int")
    return "" if value is None else str(value)


def _kv_table(rows: dict[str, object]) -> None:
    df = pd.DataFrame([{"Item": k, "Value": "n/a" if v is None else str(v)} for k, v in rows.items()])
    st.table(df, hide_index=True, hide_header=True)


def model_card(card: dict, path: Path) -> None:
    st.subheader("Model card")
    data = card.get("training_data") or {}
    split = card.get("split") or {}
    training = card.get("training") or {}
    calib = card.get("calibration") or {}
    op = card.get("operating_threshold") or {}
    size = card.get("input_size")
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**The model**")
        _kv_table({
            "Name": card.get("name", path.name),
            "Architecture": card.get("architecture"),
            "Classes": ", ".join(ui.class_label(c) for c in card.get("classes", [])),
            "Input": f"{size}x{size} pixels, grayscale" if size else None,
            "Parameters": ui.fmt_number(card.get("parameters"), "int"),
            "Preprocessing": card.get("preprocessing"),
            "Calibration": (f"{calib.get('method', 'temperature scaling')}; temperature "
                            f"{ui.fmt_number(calib.get('temperature'))}, ECE "
                            f"{ui.fmt_number(calib.get('ece_before'))} before, "
                            f"{ui.fmt_number(calib.get('ece_after'))} after") if calib else None,
        })
    with right:
        st.markdown("**How it was trained**")
        counts = data.get("counts") or {}
        _kv_table({
            "Training data": (f"{', '.join(data['sources'])} (recipe {data.get('recipe_name')}): "
                              if data.get("sources") else f"{Path(str(data.get('folder', ''))).name or 'n/a'}: ")
                             + f"{ui.fmt_number(data.get('images'), 'int')} images",
            "Images per class": None if data.get("sources") else ", ".join(
                f"{ui.class_label(k)} {ui.fmt_number(v, 'int')}" for k, v in counts.items()) or None,
            "Operating threshold": (f"tumor when P(tumor) >= {ui.fmt_number(op.get('tumor_probability'))} "
                                    f"(validation sensitivity {ui.fmt_number(op.get('sensitivity'), 'pct')})"
                                    if op else None),
            "Split": " / ".join(f"{k.replace('_', ' ')} {ui.fmt_number(split[k], 'int')}"
                                for k in ("train", "val", "test_dedup", "official_test") if k in split) or (
                " / ".join(f"{k.replace('_', ' ')} {ui.fmt_number(v, 'int')}"
                           for k, v in (split.get("inputs_per_part") or {}).items()) or None),
            "How the split was made": split.get("method"),
            "Epochs": f"{training.get('epochs_run', 'n/a')} of at most {training.get('epochs_max', 'n/a')}",
            "Batch size, learning rate": f"{training.get('batch_size', 'n/a')}, {training.get('learning_rate', 'n/a')}",
            "Augmentation": {True: "yes", False: "no"}.get(
                training.get("augmentation"), "n/a"),
            "Start weights": (f"those of {training['started_from']}" if training.get("started_from") else
                              "none (trained from scratch)" if training.get("weights") in (None, "none")
                              else training.get("weights")),
            "Training time": (f"{ui.fmt_number(training.get('seconds'), 'int')} s on {training.get('machine', 'n/a')}"
                              if training.get("seconds") is not None else None),
        })
    scores = card.get("scores") or {}
    if scores:
        st.markdown("**Scores per data split**")
        rows = [{"Split": SPLITS.get(k, (k,))[0], "Images": ui.fmt_number(s.get("n"), "int"),
                 "Accuracy": ui.fmt_number(s.get("accuracy"), "pct"),
                 "Tumor ROC AUC": ui.fmt_number(s.get("tumor_roc_auc")),
                 "Sensitivity at 95% specificity": ui.fmt_number(s.get("sensitivity_at_95_specificity"), "pct"),
                 "Calibration error (ECE)": ui.fmt_number(s.get("ece")),
                 "Flagged unfamiliar": ui.fmt_number(s.get("flagged_unfamiliar"), "pct")}
                for k, s in sorted(scores.items(), key=lambda kv: list(SPLITS).index(kv[0]) if kv[0] in SPLITS else 9)]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    if card.get("unfamiliar_check"):
        st.caption(f"Unfamiliar-scan check: {card['unfamiliar_check']}.")
    external = card.get("external")
    if isinstance(external, dict) and external:
        st.markdown("**On other sources and held-out patients** (never trained on)")
        rows = [{"Data set": source_table.external_label(k),
                 **{name.replace("_", " "): _cell(v) for name, v in (m.items() if isinstance(m, dict) else [])}}
                for k, m in external.items()]
        st.dataframe(pd.DataFrame(rows).fillna(""), hide_index=True)
    limitations = card.get("limitations")
    if isinstance(limitations, list) and limitations:
        st.markdown("**Known limitations** (measured)")
        st.warning("\n".join(f"- {x}" for x in limitations), icon=":material/warning:")


def by_source(card: dict) -> None:
    """Does it work at a hospital it has not seen: one table, one plot per source."""
    rows = source_table.source_rows(card)
    if not rows:
        return
    st.subheader("Per source and sequence")
    st.caption("Called tumor: the share of images at or above the operating threshold (on tumor-free rows, the "
               "false-positive rate). Pointing game: the share of tumor slices where the heatmap's peak lies in the "
               "tumor outline.")
    table = pd.DataFrame(rows)
    for col in ("Images", "Tumors"):
        table[col] = table[col].map(lambda v: "" if v is None or v != v else f"{int(v):,}")
    for col in ("Tumor ROC AUC",):
        table[col] = table[col].map(lambda v: ui.fmt_number(v))
    for col in ("Called tumor", "Accuracy (4 classes)", "Pointing game", "Sensitivity", "Specificity"):
        if col in table:
            table[col] = table[col].map(lambda v: ui.fmt_number(v, "pct") if isinstance(v, float) else "")
    st.dataframe(table.fillna(""), hide_index=True)
    sources = list(dict.fromkeys(r["Source"] for r in rows))
    cols = st.columns(3)
    for i, source in enumerate(sources):
        with cols[i % 3]:
            st.pyplot(figures.source_bars(source, [r for r in rows if r["Source"] == source]), width="stretch")


def against_other_model(path: Path, card: dict) -> None:
    """The stored comparison (comparison.json): this model against the one it replaced, or, when a candidate
    lost, this model beside that candidate; target by target."""
    result = read_comparison(path)
    if result is None:
        return
    st.subheader(comparison_heading(result, card.get("name", path.name)))
    st.caption("Both models measured by the same code on the same images (`" + result.get("command", "") + "`); "
               "✓ meets the goal, ✗ does not.")
    st.dataframe(pd.DataFrame(comparison_rows(result)), hide_index=True)


def split_figures(metrics: dict, classes: list[str]) -> None:
    available = [k for k in SPLITS if isinstance(metrics.get(k), dict)]
    if not available:
        st.info("metrics.json has no evaluated splits.")
        return
    split = st.segmented_control("Data used for the figures", available, default=available[0], required=True,
                                 format_func=lambda k: SPLITS[k][0], key="metrics_split") or available[0]
    st.caption(SPLITS[split][1])
    metrics_panel(metrics[split], classes)


def main() -> None:
    ui.ensure_navigation()
    st.title("Model and metrics")
    ui.disclaimer()
    files = ui.model_files()
    if files is None:
        st.warning(ui.NO_MODEL)
        return
    card = files.card or {}
    if files.card is None:
        st.info(f"The model folder {files.path.name} has no readable card.json.")
    else:
        model_card(card, files.path)
        by_source(card)
        against_other_model(files.path, card)
    st.subheader("How the model did on images it was not trained on")
    if files.metrics is None:
        st.info("This model folder has no metrics.json, so the confusion matrix, ROC and calibration curves "
                "cannot be shown.")
    else:
        split_figures(files.metrics, list(card.get("classes") or files.metrics.get("classes") or []))
    st.subheader("Training curves")
    if files.history and any(files.history.get(k) for k in ("loss", "accuracy")):
        st.pyplot(figures.training_curves(files.history), width=900)
        st.caption("A validation loss that rises while the training loss keeps falling is a sign of overfitting.")
    else:
        st.info("This model folder has no history.json, so the training curves cannot be shown.")
    ui_teaching.deferral_section(files.path)
    ui_teaching.sanity_section(files.path)


main()
