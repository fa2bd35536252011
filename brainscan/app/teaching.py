"""Streamlit pieces for teaching on the Scan check and Model pages: a library case's truth and outline, the
"uncertain: needs a human" answer, the report downloads, the deferral curves and the heatmap sanity check.
App layer (imports streamlit); never imports TensorFlow. Every model-dependent part degrades to a message
with the command that computes it when the model folder lacks its file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from brainscan.app import ui
from brainscan.config import REPO_ROOT
from brainscan.scans import cases as case_lib

UNCERTAINTY_COMMAND = ("python -m brainscan uncertainty {folder} --data ../shared/data/brain-tumor-mri "
                       "--brats ../shared/data/brats2013-slices --yes-no ../shared/data/navoneel-yes-no "
                       "--dedup-against ../shared/data/brain-tumor-mri")
SANITY_COMMAND = "python -m brainscan sanity {folder}"
NEEDS_HUMAN = "Uncertain: needs a human."


def _folder_arg(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(folder)


# --- the scan check -------------------------------------------------------------------------------

def library_case(name: str) -> case_lib.Case | None:
    """The library case behind an upload name such as case07.png (only cases opened from the library are
    named so; an uploaded file of the same name is not a library case unless its bytes match)."""
    return case_lib.by_id(case_lib.load_library(), Path(name).stem)


def uncertainty_panel(unc: Any | None, folder: Path) -> None:
    """Below the answer: the test-time-augmentation check, or how to compute its threshold."""
    if unc is None:
        return
    views = (f"{unc.views_agreeing} of {len(unc.view_labels)} slightly moved, flipped or zoomed views give the same "
             "answer")
    if unc.threshold is None:
        st.caption(f"Stability check: {views}. No deferral threshold was chosen for this model yet: run "
                   f"`{UNCERTAINTY_COMMAND.format(folder=_folder_arg(folder))}`.")
    elif unc.needs_human:
        st.error(f"**{NEEDS_HUMAN}** The answer is not stable enough: {views} (uncertainty {unc.score:.2f}, above "
                 f"the threshold {unc.threshold:.2f} chosen on validation data).", icon=":material/front_hand:")
    else:
        st.caption(f"Stability check: {views}; uncertainty {unc.score:.2f}, below the deferral threshold "
                   f"{unc.threshold:.2f} chosen on validation data.")


def case_truth(case: case_lib.Case, mask: np.ndarray | None, peak: tuple[int, int], cam_label: str) -> None:
    with st.container(border=True):
        st.markdown(f"**Case library {case.id}: the truth is {ui.class_label(case.truth)}** "
                    f"({case.sequence_name}, {case.source_name}).")
        st.markdown(case_lib.peak_sentence(mask, peak, cam_label))
        st.caption(f"{case.note} Licence {case.licence}. {case.attribution}")


def report_downloads(build_pdf, build_zip, stem: str) -> None:
    """Two download buttons whose files are built only when clicked (callables)."""
    c1, c2 = st.columns(2)
    c1.download_button("Download the report (PDF)", build_pdf, file_name=f"{stem}_report.pdf",
                       mime="application/pdf", icon=":material/picture_as_pdf:", key="dl_report", on_click="ignore")
    c2.download_button("Download the panels (PNG, zip)", build_zip, file_name=f"{stem}_panels.zip",
                       mime="application/zip", icon=":material/folder_zip:", key="dl_panels", on_click="ignore")


# --- the Model page -------------------------------------------------------------------------------

def deferral_section(folder: Path) -> None:
    from brainscan.app import teaching_figures
    from brainscan.runtime import uncertainty

    st.subheader("Uncertainty and deferral")
    settings = uncertainty.read_settings(folder)
    if settings is None:
        st.info("Not computed for this model yet: run "
                f"`{UNCERTAINTY_COMMAND.format(folder=_folder_arg(folder))}`.", icon=":material/pending:")
        return
    st.markdown(f"Beside the unfamiliar-scan check, each scan is shown to the model in {len(settings['views'])} "
                f"views ({', '.join(settings['views'])}). The score is the **{settings['signal_label']}**; above "
                f"**{settings['threshold']:.3f}** the answer reads “{NEEDS_HUMAN}” The score and the threshold "
                f"were chosen on the validation split ({settings['chosen_by']}).")
    st.pyplot(teaching_figures.coverage_accuracy(settings), width=760)
    rows = []
    for s in settings["sets"].values():
        t = s["at_threshold"]
        rows.append({"Set": s["what"], "Scans": s["n"], "Accuracy, all answered": ui.fmt_number(
            s["curve"]["accuracy_all"], "pct"), "Answered at the threshold": ui.fmt_number(t["coverage"], "pct"),
            "Accuracy on those": ui.fmt_number(t["accuracy_answered"], "pct"),
            "Accuracy on the deferred": ui.fmt_number(t["accuracy_deferred"], "pct"),
            "Answered, with the unfamiliar check too": ui.fmt_number(t.get("coverage_with_unfamiliar_check"), "pct")})
    st.dataframe(rows, hide_index=True)
    cost = settings.get("cost") or {}
    if cost:
        n = len(settings["views"])
        st.caption(f"Cost per scan ({cost.get('backend')}): {cost.get('predict_one_view_ms', 0):.1f} ms for one view, "
                   f"{cost.get(f'predict_{n}_views_ms', 0):.1f} ms for all {n}. Computed by "
                   f"`{settings.get('command') or 'python -m brainscan uncertainty'}`.")


def sanity_section(folder: Path) -> None:
    from brainscan.app import teaching_figures
    from brainscan.evaluation import sanity

    st.subheader("Heatmap sanity check")
    got = sanity.read(folder)
    if got is None:
        st.info(f"Not computed for this model yet: run `{SANITY_COMMAND.format(folder=_folder_arg(folder))}`.",
                icon=":material/pending:")
        return
    info, arrays = got
    last = info["stages"][-1]
    st.markdown("Does the heatmap show what the model learned, or just edges of the image? After Adebayo et al. "
                "(2018): the layers' learned weights are replaced by random ones, from the top layer down, and "
                "the heatmap of the same cases (Grad-CAM, or CAM where Grad-CAM is empty, as on the scan page) is "
                "computed again. A heatmap that depends on the model changes: "
                "its rank correlation (Spearman ρ) with the trained model's heatmap falls towards 0. Here, with "
                f"every layer randomised, the mean ρ is **{last['mean_spearman']:.2f}** over "
                f"{len(info['cases'])} library cases.")
    st.pyplot(teaching_figures.sanity_grid(info, arrays["inputs"], arrays["maps"]), width=900)
    st.pyplot(teaching_figures.sanity_curve(info), width=700)
    if info.get("command"):
        st.caption(f"Computed by `{info['command']}` (seed {info.get('seed')}).")
