"""The Scan page's results table: one row per dropped file or volume (a NIfTI file, a DICOM series, each series of
a zip), worded like the detail panel (no Streamlit here)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from brainscan.runtime.answer import answer_words


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    digest: str


@dataclass(frozen=True)
class VolumeUpload(Upload):
    """The files of one volume as one row: data is empty, study (brainscan.scans.studies.Study) holds them."""

    study: Any = None


@dataclass
class Summary:
    """One row of the results table (small: no pixels except a thumbnail)."""

    upload: Upload
    error: str | None = None
    prediction: Any = None  # brainscan.runtime.inference.Prediction
    n_frames: int = 1
    frame: int = 0
    kind: str = ""
    thumbnail: str | None = None
    slices: int | None = None  # a volume's axial slices


def results_frame(summaries: list[Summary]) -> pd.DataFrame:
    """The table the page shows; its CSV is the same frame without the Preview column."""
    rows = []
    for s in summaries:
        p = s.prediction
        words = answer_words(p) if p is not None else None
        rows.append({
            "Preview": s.thumbnail or "",
            "File": s.upload.name if s.slices is None else f"{s.upload.name}: volume of {s.slices} slices",
            "Answer": words.label if words else "not checked",
            "Probability of any tumor (%)": (round(100 * p.tumor_probability, 1) if p is not None
                                             and math.isfinite(p.tumor_probability) else None),
            "Probability of the answer's class (%)": round(100 * words.probability, 1) if words else None,
            "Most probable class": words.top if words else "",
            "Unfamiliar image": ("YES: do not trust" if p.out_of_distribution else "no") if p is not None else "",
            "Problem": s.error or "",
        })
    return pd.DataFrame(rows)


def results_csv(frame: pd.DataFrame) -> str:
    return frame.drop(columns=["Preview"]).to_csv(index=False)
