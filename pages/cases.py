"""Case library: real slices with known truth, browsable by class and sequence; each opens in the scan check
with the true outline drawn over the heatmap. Reads case_library/ (brainscan.scans.cases); no model needed here.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from brainscan.app import ui
from brainscan.scans import cases as case_lib

COLUMNS = 4
TRUTHS = {"glioma": "Glioma", "notumor": "No tumour"}
SEQUENCES = {"flair": "FLAIR", "t1": "T1", "t1c": "T1 with contrast", "t2": "T2"}


@st.cache_data(show_spinner=False)
def _thumbnail(path: str, mtime: float) -> str:
    from brainscan.scans.io import load_scan

    return ui.thumbnail_url(load_scan(Path(path).read_bytes(), Path(path).name).pixels, side=220)


def open_case(case_id: str) -> None:
    st.session_state["library_case"] = case_id
    st.switch_page("pages/scan.py")


def case_card(case: case_lib.Case) -> None:
    with st.container(border=True):
        st.image(_thumbnail(str(case.path), case.path.stat().st_mtime), width="stretch", alt=f"Case {case.id}")
        truth = TRUTHS.get(case.truth, ui.class_label(case.truth))
        st.markdown(f"**{case.id}** · {truth} · {case.sequence_name}")
        st.caption(f"{case.source_name}. {case.note}")
        st.caption(f"Licence: {case.licence}" + (" · outline available" if case.mask_path else ""))
        if st.button("Open in the scan check", key=f"open-{case.id}", icon=":material/radiology:", width="stretch"):
            open_case(case.id)


def main() -> None:
    ui.ensure_navigation()
    st.title("Case library")
    ui.disclaimer()
    library = case_lib.load_library()
    if not library:
        st.warning("The case library (case_library/cases.json) is missing; rebuild it with "
                   "`python scripts/build_case_library.py ../shared/data`.")
        return
    st.markdown(f"{len(library)} real MRI slices whose truth is known: lower-grade gliomas (TCGA, TCIA) and "
                "gliomas of the BRATS 2013 challenge with the tumour outlined, and tumour-free slices of glioma "
                "patients, healthy volunteers (IXI) and multiple-sclerosis patients (bright lesions that are not "
                "a tumour). Open a case to see the model's answer with the true outline over its heatmap.")
    st.info("There is no meningioma or pituitary-tumour case: no data set whose licence lets us share the "
            "images holds one, and the library does not invent any.", icon=":material/info:")
    left, right = st.columns(2)
    truths = left.pills("Truth", list(TRUTHS), format_func=TRUTHS.get, selection_mode="multi", key="lib_truth")
    present = [s for s in SEQUENCES if any(c.sequence == s for c in library)]
    sequences = right.pills("Sequence", present, format_func=SEQUENCES.get, selection_mode="multi", key="lib_seq")
    shown = case_lib.filter_cases(library, list(truths or []), list(sequences or []))
    st.caption(f"{len(shown)} of {len(library)} cases shown.")
    for start in range(0, len(shown), COLUMNS):
        cols = st.columns(COLUMNS)
        for col, case in zip(cols, shown[start : start + COLUMNS], strict=False):
            with col:
                case_card(case)
    with st.expander("Sources, licences and attribution of every case"):
        st.markdown("Two sources are non-commercial (NC) and one share-alike (SA): use the library for "
                    "non-commercial teaching and research, keeping these attributions. "
                    "Details: `case_library/README.md`.")
        st.dataframe([{"Case": c.id, "Truth": c.truth, "Sequence": c.sequence_name, "Source": c.source_name,
                       "Licence": c.licence, "Attribution": c.attribution, "Original file": c.original_file}
                      for c in library], hide_index=True)


main()
