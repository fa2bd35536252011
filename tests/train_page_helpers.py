"""AppTest helpers shared by the Train-page tests (local and hosted mode)."""

from __future__ import annotations

import io
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "train.py")
FAKE_TRAINER = Path(__file__).resolve().with_name("fake_brainscan_trainer.py")


def hosted_env(monkeypatch, tmp_path: Path, phantoms: str) -> None:
    """Hosted mode over tmp_path's runs and models folders, the phantoms as the one declared dataset, and the fake
    trainer (a run takes seconds, no TensorFlow)."""
    from brainscan import hosting, runs

    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv(runs.MODELS_ENV, str(tmp_path / "models"))
    monkeypatch.setenv(hosting.HOSTED_ENV, "1")
    monkeypatch.setenv(hosting.DATASETS_ENV, f"Phantoms={phantoms}")
    monkeypatch.setattr(runs.process, "TRAINER", [sys.executable, str(FAKE_TRAINER), "--epoch-seconds=1", "train"])


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip (in memory) holding these names and contents."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
    return buf.getvalue()


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
