"""Small helpers shared by the Streamlit pages: the model in use, wording, and display images.

Importing this module never imports TensorFlow: the Home and Model pages read the model folder's JSON
files directly, and the model itself is loaded once per process, in a background thread, by
:class:`ModelHolder` (cached with ``st.cache_resource``).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import streamlit as st

from brainscan.app.shared import SharedResults
from brainscan.cam.overlay import to_png
from brainscan.config import MODEL_ENV, SAMPLES_DIR
from brainscan.errors import ModelError
from brainscan.formatting import number as fmt_number  # noqa: F401 - the pages' number formatter
from brainscan.formatting import short_pct as pct
from brainscan.modelfolder import find_model_dir
from brainscan.runtime.answer import answer_words, class_label, class_phrase  # noqa: F401 - the pages' wording

log = logging.getLogger("brainscan.app")


def keep_training_queue_moving() -> None:
    """Hosted mode: one thread per server process and runs folder moves the training queue on, whichever page
    the visitors have open, and this page's visitor (its browser) is noted as here (brainscan.app.visitor)."""
    from brainscan.app import visitor

    visitor.keep_training_queue_moving()


DISCLAIMER = (
    "BrainScan is a research and teaching demo, **not a medical device**. "
    "Its answers must not be used to diagnose, treat or triage anyone."
)
OOD_WARNING = "This image does not look like the scans the model was trained on; do not trust this answer."
UNSURE_BELOW = 0.6  # top probability under this -> the answer is worded as uncertain

# --- the model folder, without TensorFlow ---------------------------------------------------------

def read_json(path: Path) -> dict | None:
    """A JSON object from a file, or None when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class ModelFiles:
    """What the model folder says about itself (card.json, metrics.json, history.json)."""

    path: Path
    card: dict | None
    metrics: dict | None
    history: dict | None

    @property
    def name(self) -> str:
        return str((self.card or {}).get("name") or self.path.name)


def model_files(path: Path | None = None) -> ModelFiles | None:
    path = path or find_model_dir()
    if path is None:
        return None
    return ModelFiles(path, read_json(path / "card.json"), read_json(path / "metrics.json"),
                      read_json(path / "history.json"))


NO_MODEL = ("No trained model was found. Put a model folder in models/default (see scripts/train_default.sh) "
            f"or point the {MODEL_ENV} environment variable at one.")


# --- loading the model once per process ----------------------------------------------------------

class ModelHolder:
    """Loads one model folder in a background thread; shared by every session of the process.

    ``lock`` serialises scan checks: a LiteRT interpreter and the Keras fallback's cached CAM visualisers are
    not thread-safe.
    """

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.results = SharedResults()  # what every visitor would compute alike, for this model
        self._start_lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._model: Any = None
        self._error: str | None = None

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="brainscan-model-loader", daemon=True)
                self._thread.start()

    def start_later(self, delay_s: float) -> None:
        """start() after delay_s seconds (one timer however often this is called); start() itself stays immediate."""
        with self._start_lock:
            if self._thread is None and self._timer is None:
                self._timer = threading.Timer(delay_s, self.start)
                self._timer.daemon = True
                self._timer.start()

    def _load(self) -> None:
        try:
            from brainscan.check import load_checker

            self._model = load_checker(str(self.path))
            self._warm_up()
        except ModelError as err:
            self._error = str(err)
        except Exception as err:  # noqa: BLE001 - any failure becomes a message; only the type is logged
            log.error("Model loading failed: %s", type(err).__name__)
            self._error = f"The model in {self.path.name} could not be loaded ({type(err).__name__})."
        finally:
            self._done.set()

    def _warm_up(self) -> None:
        """Do once, in the loader thread, what would otherwise make the first visitor's scan slow: import the scan
        path's lazily imported modules (pydicom and its plugins, pandas, SciPy's zoom) and run one full
        check (prediction, test-time views, heatmap) on a phantom, so the interpreter's kernels are ready."""
        import pandas  # noqa: F401 - the results table's (0.2 s to import)

        from brainscan.app import results  # noqa: F401 - the Scan page's results table
        from brainscan.check import check_scan
        from brainscan.scans import dicom  # noqa: F401 - pydicom and its pixel plugins
        from brainscan.scans.io import Scan
        from brainscan.scans.synthetic import phantom

        img, _ = phantom(256, lesion=True)
        with self.lock:
            check_scan(self._model, Scan(img, "warm-up", "image", 0, 1, {}, ()), "gradcam")

    @property
    def state(self) -> str:
        """"idle", "loading", "ready" or "failed"."""
        if self._thread is None:
            return "idle"
        if not self._done.is_set():
            return "loading"
        return "failed" if self._error else "ready"

    def get(self, timeout: float | None = None) -> Any:
        """The LoadedModel, waiting for the loader; raises ModelError when loading failed or timed out."""
        self.start()
        if not self._done.wait(timeout):
            raise ModelError("The model is still loading; try again in a moment.")
        if self._error:
            raise ModelError(self._error)
        return self._model


@st.cache_resource(max_entries=1, show_spinner=False)
def _holder(path: str, stamp: float) -> ModelHolder:
    return ModelHolder(Path(path))


def model_holder() -> ModelHolder | None:
    """The process-wide holder for the model in use (a new one when the model files change)."""
    path = find_model_dir()
    if path is None:
        return None
    files = [path / name for name in ("model.keras", "model.tflite", "card.json") if (path / name).is_file()]
    try:
        stamp = max((f.stat().st_mtime for f in files), default=0.0)
    except OSError:
        stamp = 0.0
    return _holder(str(path.resolve()), stamp)


LOAD_AFTER_S = 1.0  # the first page is sent before the loader competes with it for the interpreter


def start_model_loading() -> None:
    """Called by the entry script on every page run (cheap: the holder is cached): LOAD_AFTER_S after the first
    page view of any page, the model is loaded and warmed in the background, before anyone drops a scan. A scan
    dropped sooner starts the loading at once (ModelHolder.get)."""
    holder = model_holder()
    if holder is not None:
        holder.start_later(LOAD_AFTER_S)


def check(holder: ModelHolder, model: Any, scan: Any, cam_method: str | None, tta: bool = True) -> Any:
    """brainscan.check.check_scan under the holder's lock."""
    from brainscan.check import check_scan

    with holder.lock:
        return check_scan(model, scan, cam_method, tta=tta)


# --- wording -----------------------------------------------------------------------------------

def uncertainty_sentence(probabilities: Mapping[str, float]) -> str | None:
    """A plain warning when the top answer is weak (below UNSURE_BELOW); None otherwise."""
    ranked = sorted(probabilities.items(), key=lambda kv: kv[1], reverse=True)
    top_name, top_p = ranked[0]
    if top_p >= UNSURE_BELOW:
        return None
    if len(ranked) > 1:
        second, second_p = ranked[1]
        return (f"The model is unsure: {class_phrase(top_name)} gets only {pct(top_p)}, and "
                f"{class_phrase(second)} is close behind ({pct(second_p)}). Treat this answer as a guess.")
    return f"The model is unsure ({pct(top_p)}). Treat this answer as a guess."


def join_words(words: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    if len(words) < 2:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def tumor_classes(classes: list[str]) -> list[str]:
    return [c for c in classes if c != "notumor"]


_META_LABELS = {
    "modality": "Modality", "body_part": "Body part", "orientation": "Slice plane",
    "pixel_spacing": "Pixel spacing (mm)", "slice_thickness": "Slice thickness (mm)", "rows": "Rows",
    "columns": "Columns", "frames": "Frames",
    "photometric_interpretation": "Photometric interpretation", "transfer_syntax": "Transfer syntax",
    "bits_stored": "Bits stored", "window": "Display window", "format": "Format", "mode": "Pixel mode",
    "width": "Width (px)", "height": "Height (px)",
}


def metadata_rows(meta: Mapping[str, object]) -> list[dict[str, str]]:
    """The scan's safe metadata as rows of {"Field", "Value"}; empty values are left out."""
    rows = []
    for key, value in meta.items():
        if value is None or value == "":
            continue
        if isinstance(value, (list, tuple)):
            value = " x ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        rows.append({"Field": _META_LABELS.get(key, key.replace("_", " ").capitalize()), "Value": str(value)})
    return rows


# --- images for display ------------------------------------------------------------------------

def shrink(img: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (INTER_AREA) so the longer side is at most max_side; smaller images are returned as they are."""
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    scale = max_side / max(h, w)
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def thumbnail_url(pixels: np.ndarray, side: int = 72) -> str:
    """A small PNG thumbnail of a [0, 1] image as a data: URL (for st.column_config.ImageColumn)."""
    from brainscan.scans.io import to_uint8

    data = to_png(shrink(to_uint8(pixels), side))
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def sample_files(subfolder: str = "") -> list[Path]:
    """Files in sample_images/ or one of its folders (volumes/), README and hidden files excluded, by name."""
    folder = SAMPLES_DIR / subfolder if subfolder else SAMPLES_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name.lower() != "readme.md")


# --- shared page pieces ------------------------------------------------------------------------

def ensure_navigation() -> None:
    """Call first on every page. On a cold server, Streamlit's legacy "pages/ folder" mode runs a deep-linked page
    (e.g. /scan) on its own, without streamlit_app.py and its st.navigation; switch that mode off and rerun, so the
    page runs through the app's navigation (same URL path, hence the same page) with its layout and menu."""
    from streamlit.runtime.pages_manager import PagesManager  # no public API for this

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def disclaimer() -> None:
    st.caption(f":material/info: {DISCLAIMER}")


def probability_bars(probabilities: Mapping[str, float], answer: str) -> None:
    """The calibrated probability of each class as a labelled bar, the answer's class in bold. Streamlit's own
    progress bars: no chart library to load in the browser before the first answer shows."""
    st.caption("Calibrated probability of each class")
    for c, p in probabilities.items():
        name = f"**{class_label(c)}** (the answer)" if c == answer else class_label(c)
        st.progress(min(max(float(p), 0.0), 1.0), text=f"{name}: {pct(float(p))}")
