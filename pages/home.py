"""Home: what BrainScan does, the model in use with its key figures, and the disclaimer.

Renders without importing TensorFlow (it reads the model's card.json); the model itself is warmed up in a
background thread so that the first scan check does not wait for it.
"""

from __future__ import annotations

import streamlit as st

from brainscan.app import ui
from brainscan.errors import ModelError


def key_figures(card: dict) -> None:
    scores = card.get("scores", {})
    split = "test_dedup" if "test_dedup" in scores else next(iter(scores), None)
    if split is None:
        st.info("The model card has no test scores.")
        return
    s = scores[split]
    n = ui.fmt_number(s.get("n"), "int")
    where = ("held-out test images with near-duplicates of the training images removed"
             if split == "test_dedup" else f"the {split.replace('_', ' ')} split")
    st.markdown(f"Measured on **{n} {where}**:")
    cols = st.columns(4)
    cols[0].metric("Accuracy (4 classes)" if len(card.get("classes", [])) == 4 else "Accuracy",
                   ui.fmt_number(s.get("accuracy"), "pct"), help="Share of test images whose most likely class "
                   "was the true class.", border=True)
    cols[1].metric("Tumor vs no tumor: ROC AUC", ui.fmt_number(s.get("tumor_roc_auc")), border=True,
                   help="How well P(tumor) separates tumor from tumor-free scans: 1 is perfect, 0.5 is chance.")
    cols[2].metric("Sensitivity at 95% specificity", ui.fmt_number(s.get("sensitivity_at_95_specificity"), "pct"),
                   border=True, help="Share of tumors found when the threshold is set so that only 5% of "
                   "tumor-free scans are flagged.")
    cols[3].metric("Calibration error (ECE)", ui.fmt_number(s.get("ece")), border=True,
                   help="Expected calibration error: average gap between stated probability and actual accuracy "
                   "(0 is perfect).")
    external = card.get("external")
    if isinstance(external, dict) and external:
        st.markdown("**On data from other sources** (never seen in training):")
        rows = []
        for name, m in external.items():
            m = m if isinstance(m, dict) else {}
            rows.append({"Data set": name.replace("_", " "), "Images": ui.fmt_number(m.get("n"), "int"),
                         "Accuracy": ui.fmt_number(m.get("accuracy"), "pct"),
                         "Tumor ROC AUC": ui.fmt_number(m.get("tumor_roc_auc")),
                         "Heatmap hit rate": ui.fmt_number(m.get("pointing_game_hit_rate"), "pct")})
        st.dataframe(rows, hide_index=True)
    limitations = card.get("limitations")
    if isinstance(limitations, list) and limitations:
        st.warning("**Known limitations (measured):**\n" + "\n".join(f"- {x}" for x in limitations),
                   icon=":material/warning:")


def model_status(holder: ui.ModelHolder) -> None:
    state = holder.state
    if state == "ready":
        st.success("The model is loaded and ready.", icon=":material/check_circle:")
    elif state == "failed":
        try:
            holder.get(timeout=0)
        except ModelError as err:
            st.error(str(err))
    else:
        st.info("Loading the model in the background; the scan check will be ready in a few seconds.",
                icon=":material/hourglass_top:")


@st.fragment(run_every=1.5)
def poll_status(holder: ui.ModelHolder) -> None:
    model_status(holder)
    if holder.state in ("ready", "failed"):
        st.rerun()  # a full rerun renders the final status without the timer


def model_section() -> None:
    st.subheader("The model in use")
    files = ui.model_files()
    if files is None:
        st.warning(ui.NO_MODEL)
        return
    card = files.card
    if card is None:
        st.info(f"The model folder {files.path.name} has no readable card.json, so its figures cannot be shown.")
    else:
        classes = ", ".join(ui.class_label(c) for c in card.get("classes", []))
        size = card.get("input_size")
        images = (card.get("training_data") or {}).get("images")
        st.markdown(f"**{files.name}** ({card.get('architecture', 'unknown')} network, {size}x{size} pixel input) "
                    f"sorts a brain MRI slice into: {classes}. Trained on {ui.fmt_number(images, 'int')} images.")
        key_figures(card)
    holder = ui.model_holder()
    if holder is not None:  # the entry script has it loading shortly after this page is sent
        if holder.state in ("idle", "loading"):
            poll_status(holder)
        else:
            model_status(holder)


def main() -> None:
    ui.ensure_navigation()
    st.title("BrainScan")
    st.markdown("##### Brain MRI tumor check with heatmaps")
    st.warning(ui.DISCLAIMER, icon=":material/warning:")
    st.markdown(
        "1. Open **Scan check** and upload one or more brain MRI slices (PNG, JPEG, TIFF or DICOM), "
        "or pick a sample image.\n"
        "2. Read the answer: a calibrated probability for each class, the probability of any tumor, and a "
        "heatmap of the regions that drove the answer.\n"
        "3. Before trusting any answer, see **Model and metrics** for how often this model is right on images "
        "it has never seen.\n"
        "4. Teaching: the **Case library** holds real slices with the true tumour outline; the **Quiz** lets a "
        "learner answer before seeing the truth and the model's answer."
    )
    st.page_link("pages/scan.py", label="Start a scan check", icon=":material/arrow_forward:")
    model_section()


main()
