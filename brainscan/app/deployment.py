"""What this deployment offers of the Train page: the page itself, nothing (BRAINSCAN_TRAIN_PAGE=off), or a sentence
saying why training is not here (TensorFlow not installed: the serving image, requirements-serve.txt).

Replicated deployments (deploy/compose.yaml: several `streamlit run` processes behind haproxy) set
BRAINSCAN_TRAIN_PAGE=off: each replica would run its own training queue (one run at a time per process, not per
deployment), a visitor's runs live on the replica their session landed on, and the models folder is mounted
read-only, so there is nothing to promote into. The page is then left out of the menu; a link to /train says so in
one sentence. The value is read once per page run; anything but empty, 1, true, yes or on turns the page off (a
typo must not open training on a deployment that meant to close it).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping

import streamlit as st

TRAIN_PAGE_ENV = "BRAINSCAN_TRAIN_PAGE"
ON, OFF, NO_TENSORFLOW = "on", "off", "no-tensorflow"
TRAINING_MODULES = ("tensorflow", "keras")  # what `python -m brainscan train` imports (requirements.txt)

OFF_SENTENCE = ("Training is off on this deployment: it checks scans with the model it was given, and models are "
                "trained on a separate BrainScan installation.")
NO_TENSORFLOW_SENTENCE = ("Training needs TensorFlow, which this installation does not have: it runs the model with "
                          "the LiteRT runtime only (requirements-serve.txt). Install requirements.txt to train here.")


def training_installed() -> bool:
    """Whether the packages a training run imports are installed (looked up, not imported: no TensorFlow here)."""
    return all(importlib.util.find_spec(name) is not None for name in TRAINING_MODULES)


def train_page_mode(environ: Mapping[str, str] | None = None,
                    installed: Callable[[], bool] = training_installed) -> str:
    """ON, OFF (BRAINSCAN_TRAIN_PAGE is set to anything but empty/1/true/yes/on) or NO_TENSORFLOW (on, but a
    training run could not start here)."""
    env = os.environ if environ is None else environ
    value = env.get(TRAIN_PAGE_ENV, "").strip().lower()
    if value not in ("", "1", "true", "yes", "on"):
        return OFF
    return ON if installed() else NO_TENSORFLOW


def unavailable_page(sentence: str) -> Callable[[], None]:
    """A page body for st.Page that says, in one sentence, why there is no Train page here."""

    def train_unavailable() -> None:
        st.title("Train a model")
        st.info(sentence, icon=":material/block:")

    return train_unavailable
