"""One split's evaluation figures, as the Model page and the Train page both show them (metrics.json layout:
brainscan.evaluation.metrics)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from brainscan.app import figures, ui

SMALL_SET = 30  # below this many images the figures swing widely by chance


def metrics_panel(m: dict, classes: list[str]) -> None:
    """Headline numbers, confusion matrix and per-class table, ROC and calibration curves of one split."""
    binary = m.get("tumor_vs_notumor") or {}
    at95 = binary.get("at_95_specificity") or {}
    cols = st.columns(5)
    cols[0].metric("Images", ui.fmt_number(m.get("n"), "int"), border=True)
    cols[1].metric("Accuracy", ui.fmt_number(m.get("accuracy"), "pct"), border=True,
                   help="Share of the images whose most probable class is the true one.")
    cols[2].metric("Tumor ROC AUC", ui.fmt_number(binary.get("roc_auc")), border=True,
                   help="Tumor (any type) vs no tumor; 0.5 is chance, 1.0 is perfect.")
    cols[3].metric("Sensitivity at 95% specificity", ui.fmt_number(at95.get("sensitivity"), "pct"), border=True,
                   help="Share of tumor images found when at most 5% of the no-tumor images are flagged.")
    cols[4].metric("Calibration error (ECE)", ui.fmt_number(m.get("ece")), border=True,
                   help="After temperature scaling; 0 is perfect.")
    if m.get("n") is not None and m["n"] < SMALL_SET:
        st.caption(f"Only {m['n']} images in this set: these scores can swing widely by chance.")
    labels = [ui.class_label(c) for c in classes]
    left, right = st.columns(2, gap="large")
    with left:
        if m.get("confusion_matrix"):
            st.pyplot(figures.confusion_matrix(m["confusion_matrix"], labels), width="stretch")
        per_class = m.get("per_class") or {}
        if per_class:
            st.dataframe(pd.DataFrame([
                {"Class": ui.class_label(c), "Precision": ui.fmt_number(v.get("precision")),
                 "Recall (sensitivity)": ui.fmt_number(v.get("recall")), "F1": ui.fmt_number(v.get("f1")),
                 "Images": ui.fmt_number(v.get("support"), "int")} for c, v in per_class.items()]), hide_index=True)
            st.caption("Precision: of the images predicted as this class, the share that were. Recall: of the images "
                       "of this class, the share found. F1 combines both.")
    with right:
        roc = binary.get("roc_curve") or {}
        if roc.get("fpr"):
            st.pyplot(figures.roc_curve(roc["fpr"], roc["tpr"], binary.get("roc_auc"), at95), width="stretch")
        else:
            st.info("No ROC curve was saved for this split.")
        curve = m.get("calibration_curve") or {}
        if curve.get("confidence"):
            st.pyplot(figures.calibration_curve(curve["confidence"], curve["accuracy"], m.get("ece")),
                      width="stretch")
        else:
            st.info("No calibration curve was saved for this split.")
