"""One volume end to end: Volume -> every head slice checked (batched) -> the volume's answer -> its peak slice
checked in full (steps, heatmap, uncertainty) -> the heatmap's peak in RAS+ millimetres. Used by the CLI and the app.

Any slice of the volume can be checked like a single scan (:func:`check_slice`): a volume is a list of slices
plus geometry.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from brainscan.check import CheckResult, check_scan
from brainscan.errors import ScanError
from brainscan.runtime.volume import SliceAnswers, VolumeAnswer, answer, check_slices, read_rule
from brainscan.scans.io import Scan
from brainscan.scans.volume import Volume, file_stem

if TYPE_CHECKING:
    from brainscan.runtime.inference import Model


def slice_scan(volume: Volume, k: int) -> Scan:
    """Axial slice k as a Scan (display convention, square pixels), named after the volume."""
    pixels = volume.slice_pixels(k)
    h, w = pixels.shape
    meta = {"volume": volume.kind, "slice": k, "slices": volume.n_slices, "width": w, "height": h,
            "voxel_size_mm": [round(v, 3) for v in volume.spacing]}
    notes = (f"Axial slice {k} of {volume.n_slices} (0 is the most inferior), shown radiologically: anterior at "
             "the top, the patient's right on the image's left.",)
    return Scan(pixels, f"{file_stem(volume.name)}_slice{k:03d}", "volume", k, volume.n_slices, meta, notes)


def check_slice(model: Model, volume: Volume, k: int, cam_method: str | None = "gradcam", tta: bool = True,
                class_index: int | None = None) -> CheckResult:
    """Everything a single scan gets (steps, probabilities, heatmap, uncertainty) for slice k; the heatmap explains
    class_index (default: the slice's own answer, as for a single scan)."""
    return check_scan(model, slice_scan(volume, k), cam_method, class_index, tta=tta)


def heatmap_class_index(model: Model, result: VolumeAnswer) -> int | None:
    """The class the peak slice's heatmap explains: the volume's answer when it is a tumour (the slice itself may
    be just below the threshold), else the slice's own answer."""
    from brainscan.runtime.answer import heatmap_class

    p = result.prediction
    return model.classes.index(heatmap_class(p)) if p.is_tumor else None


@dataclass
class VolumeResult:
    volume: Volume
    slices: SliceAnswers
    answer: VolumeAnswer
    peak: CheckResult | None  # the peak slice checked in full (None when no heatmap was asked for)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def prediction(self):
        return self.answer.prediction

    def cam_peak_ras(self) -> tuple[float, float, float] | None:
        """The peak slice's heatmap maximum in RAS+ mm."""
        if self.peak is None or self.peak.heatmap is None or self.answer.peak_slice is None:
            return None
        x, y = self.peak.heatmap.peak
        return self.volume.display_world(x, y, self.answer.peak_slice)

    def as_dict(self) -> dict:
        """The command line's JSON line (no pixels, no identifiers)."""
        p = self.prediction
        tumor = self.slices.tumor()
        labels = [self.slices.predictions[k].label if k in self.slices.predictions else None
                  for k in range(self.slices.n_slices)]
        out = {"file": self.volume.name, "kind": "volume", "label": p.label, "top_class": p.top_class,
               "probabilities": p.probabilities, "tumor_probability": p.tumor_probability, "threshold": p.threshold,
               "ood_score": p.ood_score, "out_of_distribution": p.out_of_distribution,
               "slices": self.slices.n_slices, "slices_checked": len(self.slices.checked),
               "slices_outside_head": len(self.slices.outside_head), "slices_missing": len(self.slices.missing),
               "slice_tumor_probability": [None if math.isnan(v) else round(float(v), 4) for v in tumor],
               "slice_label": labels, "peak_slice": self.answer.peak_slice,
               "rule": self.answer.rule.describe(), "rule_score": round(self.answer.score, 4),
               "voxel_size_mm": [round(v, 3) for v in self.volume.spacing],
               "notes": list(self.volume.notes)}
        if self.peak is not None and self.peak.heatmap is not None:
            hm = self.peak.heatmap
            out["cam_method"] = hm.method
            if hm.instead_of:
                out["cam_instead_of"] = hm.instead_of
            out["cam_peak"] = list(hm.peak)  # pixels of the peak slice as shown
            out["cam_peak_ras_mm"] = [round(v, 2) for v in self.cam_peak_ras()]  # type: ignore[union-attr]
        out["timings_ms"] = {k: round(v, 1) for k, v in self.timings_ms.items()}
        return out


def check_volume(model: Model, volume: Volume, cam_method: str | None = "gradcam", tta: bool = True,
                 batch_size: int = 32) -> VolumeResult:
    """The volume's answer, its per-slice answers and (with cam_method) its peak slice in full; ScanError when no
    slice holds head."""
    t = time.perf_counter()
    rule = read_rule(getattr(model, "path", None))
    slices = check_slices(model, volume, rule.head_relative, batch_size)
    if not slices.checked:
        raise ScanError(f"{volume.name or 'This volume'}: none of its {volume.n_slices} slices holds enough of a head "
                        "to check.")
    t_slices = time.perf_counter()
    result = answer(slices, rule, model)
    peak = None
    if cam_method and result.peak_slice is not None:
        peak = check_slice(model, volume, result.peak_slice, cam_method, tta, heatmap_class_index(model, result))
    t_end = time.perf_counter()
    return VolumeResult(volume, slices, result, peak, {"slices_ms": 1000 * (t_slices - t),
                                                        "peak_ms": 1000 * (t_end - t_slices)})


def check_study(model: Model, study, cam: bool = False, cam_method: str = "gradcam", volume_index: int | None = None,
                cam_out: str | None = None) -> dict:
    """One JSON-able line for a volume study (brainscan.scans.studies.Study), or {"file", "error"}."""
    try:
        volume = study.load(volume_index)
        result = check_volume(model, volume, cam_method if cam else None, tta=False)
    except ScanError as err:
        return {"file": study.name, "kind": "volume", "error": str(err)}
    except Exception as err:  # noqa: BLE001 - one unusable volume must not stop the others or print a traceback
        return {"file": study.name, "kind": "volume", "error": f"This volume could not be processed "
                                                              f"({type(err).__name__})."}
    out = result.as_dict()
    out["file"] = study.name
    if cam and cam_out and result.peak is not None and result.peak.heatmap is not None:
        from brainscan.check import write_overlay

        out["cam_overlay"] = write_overlay(result.peak, cam_out, result.peak.scan.name)
    return out


def slice_lines(model: Model, study, cam: bool = False, cam_method: str = "gradcam",
                volume_index: int | None = None) -> list[dict]:
    """`predict --slices` for a NIfTI file: one line per axial slice, each checked as a single scan."""
    try:
        volume = study.load(volume_index)
    except ScanError as err:
        return [{"file": study.name, "error": str(err)}]
    lines = []
    for k in range(volume.n_slices):
        if k in volume.missing:
            lines.append({"file": study.name, "slice": k, "error": "This slice is missing from the volume."})
            continue
        result = check_slice(model, volume, k, cam_method if cam else None, tta=False)
        lines.append({"file": study.name, "slice": k,
                      **{key: v for key, v in result.as_dict().items() if key not in ("file", "frame", "frames")}})
    return lines


def predict_paths(model: Model, paths: list[str], cam: bool = False, cam_method: str = "gradcam",
                  cam_out: str | None = None, slices: bool = False, volume_index: int | None = None):
    """`predict`'s lines, in input order: one per volume (NIfTI file, DICOM series in a folder or zip), one per other
    file as before. With slices: every file one line as before (a folder expanded), a NIfTI file one line per axial
    slice, a zip one line per file inside."""
    from brainscan.check import check_file
    from brainscan.scans.studies import Study, peek, studies_from_paths

    cam = cam or bool(cam_out)
    if not slices:
        studies = studies_from_paths(paths)
    else:
        studies = []
        for p in expand_paths(paths):
            head = peek(p)
            from brainscan.scans.nifti import looks_like_nifti
            from brainscan.scans.studies import is_zip

            volume_like = looks_like_nifti(head, p) or is_zip(head)
            studies.extend(studies_from_paths([p]) if volume_like else [Study(p, "file", path=p)])
    for study in studies:
        if study.kind == "refused":
            yield {"file": study.name, "error": study.error}
        elif study.kind == "nifti" and slices:
            yield from slice_lines(model, study, cam, cam_method, volume_index)
        elif study.kind == "dicom series" and slices:
            for name, data in study.files:
                yield _check_bytes_line(model, Study(name, "file", ((name, data),)), cam, cam_method)
        elif study.is_volume:
            yield check_study(model, study, cam, cam_method, volume_index, cam_out)
        elif study.path is not None:
            yield check_file(model, study.path, cam=cam, cam_method=cam_method, cam_out=cam_out)
        else:  # a lone file inside a zip
            yield _check_bytes_line(model, study, cam, cam_method)


def _check_bytes_line(model: Model, study, cam: bool, cam_method: str) -> dict:
    from brainscan.check import check_bytes

    name, data = study.files[0]
    try:
        return {**check_bytes(model, data, name, cam_method=cam_method if cam else None).as_dict(), "file": study.name}
    except ScanError as err:
        return {"file": study.name, "error": str(err)}
    except Exception as err:  # noqa: BLE001
        return {"file": study.name, "error": f"This file could not be processed ({type(err).__name__})."}


def expand_paths(paths: list[str]) -> list[str]:
    """Files as given, folders as their files (recursively, sorted, hidden ones left out)."""
    import os

    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for dirpath, dirnames, files in os.walk(p):
                dirnames.sort()
                out.extend(os.path.join(dirpath, f) for f in sorted(files) if not f.startswith("."))
        else:
            out.append(p)
    return out
