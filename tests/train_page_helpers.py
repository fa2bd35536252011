"""AppTest helpers shared by the Train-page tests (local and hosted mode)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "train.py")


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def tiny_settings(at: AppTest, epochs: int, max_images: int = 0) -> None:
    """Settings for a run that finishes in seconds: 32 px, batch 8, no early stop."""
    at.selectbox(key="train_img").set_value(32)
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_max").set_value(max_images)
    at.selectbox(key="train_batch").set_value(8)
    at.number_input(key="train_patience").set_value(200)


def start(at: AppTest) -> AppTest:
    return next(b for b in at.button if b.label == "Start training").click().run()


def rerun_until(at: AppTest, cond: Callable[[AppTest], bool], timeout: float = 240) -> AppTest:
    deadline = time.monotonic() + timeout
    while not cond(at) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    return at
