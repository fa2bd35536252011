"""BrainScan: the Streamlit entry point (navigation only; each page lives in pages/).

Run with ``streamlit run streamlit_app.py``. Research and teaching demo, not a medical device.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from brainscan.app import deployment
from brainscan.app.ui import keep_training_queue_moving, start_model_loading

HERE = Path(__file__).resolve().parent


def main() -> None:
    st.set_page_config(page_title="BrainScan (research demo)", page_icon=":material/neurology:", layout="wide")
    pages = [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/scan.py", title="Scan check", icon=":material/radiology:"),
        st.Page("pages/model.py", title="Model and metrics", icon=":material/monitoring:"),
        st.Page("pages/cases.py", title="Case library", icon=":material/photo_library:"),
        st.Page("pages/quiz.py", title="Quiz", icon=":material/quiz:"),
    ]
    train = deployment.train_page_mode() if (HERE / "pages" / "train.py").exists() else deployment.OFF
    if train == deployment.ON:
        pages.append(st.Page("pages/train.py", title="Train a model", icon=":material/model_training:"))
        keep_training_queue_moving()  # hosted: a queued run starts even when no Train page is open
    else:  # off: not in the menu, and /train says why; no TensorFlow: in the menu, saying why
        sentence = deployment.OFF_SENTENCE if train == deployment.OFF else deployment.NO_TENSORFLOW_SENTENCE
        pages.append(st.Page(deployment.unavailable_page(sentence), title="Train a model", url_path="train",
                             icon=":material/model_training:",
                             visibility="hidden" if train == deployment.OFF else "visible"))
    start_model_loading()  # in the background: the first scan of the first visitor finds it loaded and warm
    st.navigation(pages, position="top").run()


main()
