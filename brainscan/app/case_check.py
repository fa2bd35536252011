"""Teaching helpers over one scan check: a library case checked by the model, with its true outline, and
the model's answer in the quiz's terms. Used by the Case library, Quiz and Scan check pages. No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainscan.cam.heatmap import heatmap
from brainscan.check import CheckResult, check_scan
from brainscan.runtime.answer import heatmap_class
from brainscan.scans import cases as case_lib
from brainscan.scans.io import load_scan


@dataclass
class CaseCheck:
    case: case_lib.Case
    result: CheckResult  # its heatmap is for the class in cam_class
    cam_class: str
    mask: np.ndarray | None

    @property
    def peak_inside(self) -> bool | None:
        return case_lib.inside(self.mask, self.result.heatmap.peak) if self.result.heatmap is not None else None

    def model_answer(self) -> case_lib.Answer:
        peak = self.result.heatmap.peak if self.result.heatmap is not None else None
        return case_lib.model_answer(self.result.prediction.label, peak)


def check_case(model, case: case_lib.Case, cam_method: str = "gradcam", for_tumour_class: bool = True) -> CaseCheck:
    """The scan check of a library case. for_tumour_class: the heatmap shows the evidence for the most likely
    tumour class (as in the pointing game: where the model would point at a tumour), else for its answer."""
    scan = load_scan(case.data(), case.name)
    first = check_scan(model, scan, None)
    cam_class = heatmap_class(first.prediction, tumor_evidence=for_tumour_class)
    first.heatmap = heatmap(model, first.prepared, model.classes.index(cam_class), cam_method)
    return CaseCheck(case, first, cam_class, case.mask())
