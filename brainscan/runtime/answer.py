"""The model's answer in words, and the class a heatmap explains: one place for both (no TensorFlow).

A Prediction (brainscan.runtime.inference) carries two different things, named apart:

* ``label``: the answer. With a 'notumor' class it is the operating-point decision: tumour when P(any tumour)
  reaches the folder's threshold, and then the most probable tumour class; otherwise 'notumor'.
* ``top_class``: the single most probable class. It can differ from the answer: P(no tumour) 42% is the top
  class, yet P(any tumour) 58% is above a threshold of 46%, so the answer is a tumour.

Every page, the PDF report, the results table and its CSV, the quiz and the case check word the answer
through :func:`answer_words`, so that they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from brainscan.formatting import short_pct

NO_TUMOR = "notumor"

# How each class reads in a sentence ("a glioma") and as a short label ("Glioma").
_PHRASES = {"glioma": "a glioma", "meningioma": "a meningioma", "pituitary": "a pituitary tumor",
            NO_TUMOR: "no tumor", "tumor": "a tumor"}
_LABELS = {"glioma": "Glioma", "meningioma": "Meningioma", "pituitary": "Pituitary tumor",
           NO_TUMOR: "No tumor", "tumor": "Tumor"}


def class_label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " ").capitalize())


def class_phrase(name: str) -> str:
    return _PHRASES.get(name, name.replace("_", " "))


class PredictionLike(Protocol):
    probabilities: dict[str, float]
    label: str
    top_class: str
    tumor_probability: float
    threshold: float | None


@dataclass(frozen=True)
class AnswerWords:
    label: str  # the answer as a short label: "Glioma", "No tumor"
    probability: float  # the calibrated probability of the answer's class
    sentence: str  # the answer in one sentence, with P(any tumour) against the threshold
    top_class: str  # the single most probable class as a short label
    top_probability: float
    top_note: str | None  # a sentence when the most probable class is not the answer, else None

    @property
    def top(self) -> str:
        """The most probable class with its probability: "No tumor (42%)"."""
        return f"{self.top_class} ({short_pct(self.top_probability)})"


def answer_words(p: PredictionLike) -> AnswerWords:
    """The one wording of a prediction's answer (see the module's docstring)."""
    probs = p.probabilities
    sentence = f"The model's answer: {class_phrase(p.label)}"
    if p.threshold is not None and NO_TUMOR in probs:
        side = "below" if p.label == NO_TUMOR else "at or above"
        tumor, threshold = short_pct(p.tumor_probability), short_pct(p.threshold)
        if tumor == threshold:  # "75%, below its threshold of 75%" would read as a contradiction
            tumor, threshold = f"{100 * p.tumor_probability:.1f}%", f"{100 * p.threshold:.1f}%"
        sentence += f". Any tumor {tumor}, {side} its threshold of {threshold}"
        if p.label != NO_TUMOR:
            sentence += f"; {class_phrase(p.label)} is the most probable tumor type ({short_pct(probs[p.label])})"
    else:
        sentence += f" ({short_pct(probs[p.label])})"
    note = None
    if p.top_class != p.label:
        note = (f"The single most probable class is {class_phrase(p.top_class)} ({short_pct(probs[p.top_class])}); "
                f"the answer follows the threshold on any tumor, chosen on validation scans.")
    return AnswerWords(class_label(p.label), float(probs[p.label]), sentence + ".", class_label(p.top_class),
                       float(probs[p.top_class]), note)


def most_probable_tumor_class(probabilities: Mapping[str, float]) -> str:
    return max((c for c in probabilities if c != NO_TUMOR), key=lambda c: probabilities[c])


def heatmap_class(p: PredictionLike, tumor_evidence: bool = False) -> str:
    """The class a heatmap explains: the answer; with tumor_evidence (the pointing game, library cases) the
    most probable tumour class even when the answer is no tumour, i.e. where the model would point at one."""
    if tumor_evidence and NO_TUMOR in p.probabilities and len(p.probabilities) > 1:
        return most_probable_tumor_class(p.probabilities)
    return p.label
