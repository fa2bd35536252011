"""One scan check end to end: bytes -> Scan -> Prepared -> Prediction -> Heatmap. Used by the CLI and the app."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from brainscan.scans import reader
from brainscan.scans.io import Scan, ScanError, load_scan
from brainscan.scans.preprocess import Prepared, prepare

if TYPE_CHECKING:
    from brainscan.cam.heatmap import Heatmap
    from brainscan.runtime.inference import Model, Prediction
    from brainscan.runtime.uncertainty import Uncertainty


@dataclass
class CheckResult:
    scan: Scan
    prepared: Prepared
    prediction: Prediction
    heatmap: Heatmap | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    uncertainty: Uncertainty | None = None  # test-time augmentation

    def as_dict(self) -> dict:
        """The JSON result (no pixels, no identifiers)."""
        p = self.prediction
        out = {"file": self.scan.name, "label": p.label, "top_class": p.top_class, "probabilities": p.probabilities,
               "tumor_probability": p.tumor_probability, "ood_score": p.ood_score,
               "out_of_distribution": p.out_of_distribution, "frame": self.scan.frame,
               "frames": self.scan.n_frames, "notes": list(self.scan.notes) + list(self.prepared.notes)}
        if self.uncertainty is not None:
            out["uncertainty"] = self.uncertainty.as_dict()
            out["needs_human"] = self.uncertainty.needs_human
        if self.heatmap is not None:
            out["cam_method"] = self.heatmap.method
            if self.heatmap.instead_of:
                out["cam_instead_of"] = self.heatmap.instead_of  # that method's map was empty
            out["cam_peak"] = list(self.heatmap.peak)
        return out


def load_checker(model_path: str | None = None) -> Model:
    from brainscan.runtime.inference import load_model

    return load_model(model_path)


def check_scan(model: Model, scan: Scan, cam_method: str | None = "gradcam", class_index: int | None = None,
               tta: bool = True) -> CheckResult:
    """tta: also the test-time-augmentation uncertainty, with the model folder's deferral threshold
    (brainscan.runtime.uncertainty; about 8 more forward passes in one batch)."""
    from brainscan.runtime.answer import heatmap_class
    from brainscan.runtime.inference import predict

    t = time.perf_counter()
    prepared = prepare(scan.pixels, model.size)
    t_prep = time.perf_counter()
    prediction = predict(model, prepared.input)
    t_pred = time.perf_counter()
    unc = None
    if tta:
        from brainscan.runtime import uncertainty

        unc = uncertainty.assess(model, prepared.input, uncertainty.read_settings(model.path))
    hm = None
    if cam_method:
        from brainscan.cam.heatmap import heatmap

        k = model.classes.index(heatmap_class(prediction)) if class_index is None else class_index
        hm = heatmap(model, prepared, k, cam_method)
    t_cam = time.perf_counter()
    unc_ms = unc.ms if unc is not None else 0.0
    timings = {"preprocess_ms": 1000 * (t_prep - t), "predict_ms": 1000 * (t_pred - t_prep),
               "uncertainty_ms": unc_ms, "cam_ms": 1000 * (t_cam - t_pred) - unc_ms}
    return CheckResult(scan, prepared, prediction, hm, timings, unc)


def check_bytes(model: Model, data: bytes, name: str, frame: int | None = None,
                cam_method: str | None = "gradcam") -> CheckResult:
    """Raises ScanError (one sentence) for input that cannot be used."""
    t = time.perf_counter()
    scan = load_scan(data, name, frame)
    decode_ms = 1000 * (time.perf_counter() - t)
    result = check_scan(model, scan, cam_method)
    result.timings_ms = {"decode_ms": decode_ms, **result.timings_ms}
    return result


def check_file(model: Model, path: str, cam: bool = False, cam_method: str = "gradcam",
               cam_out: str | None = None) -> dict:
    """One JSON-able line for the CLI: the result, or {"file", "error"} for input that cannot be used."""
    try:
        data = reader.read_file(path)  # a regular file of at most 512 MB: never a pipe or a device
        result = check_bytes(model, data, os.path.basename(path), cam_method=cam_method if cam else None)
    except ScanError as err:
        return {"file": path, "error": str(err)}
    except Exception as err:  # noqa: BLE001 - one unusable file must not stop the others or print a traceback
        return {"file": path, "error": f"This file could not be processed ({type(err).__name__})."}
    out = {"file": path, **{k: v for k, v in result.as_dict().items() if k != "file"}}
    if cam and cam_out and result.heatmap is not None:
        out["cam_overlay"] = write_overlay(result, cam_out, Path(path).stem)
    return out


def write_overlay(result: CheckResult, out_dir: str, stem: str, opacity: float = 0.4) -> str:
    from brainscan.cam.overlay import gradcam_overlay, to_png

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    dest = Path(out_dir) / f"{stem}_{result.heatmap.method.replace('+', 'p')}.png"
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(to_png(gradcam_overlay(result.scan.pixels, result.heatmap.original, opacity)))
    os.replace(tmp, dest)
    return str(dest)
