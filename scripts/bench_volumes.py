"""Time and memory of whole volumes (issue 20), each case in a fresh process with the shipped model:

    python scripts/bench_volumes.py [--model models/default] [--keep DIR]

* a 200-slice 1 mm volume (256 x 256 x 200 int16 NIfTI): read, every slice checked, the peak slice in full;
* a 512 x 512 x 400 volume (int16 NIfTI, 0.5 mm pixels): the same, with the process's peak memory (VmHWM);
* a 22-slice 512 x 512 DICOM series: the same;
* `python -m brainscan predict --cam` on the 200-slice volume, as a user runs it (model loading included).

Synthetic heads written slice by slice (brainscan.scans.synthetic's shapes), so making them needs little memory.
Timings are as measured on this machine, not targets.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def head_slice(k: int, slices: int, size: int, lesion: tuple[int, int, int], radius: float) -> np.ndarray:
    """Slice k (display order) of an ellipsoid head with a skull, ventricles and a bright ball: int16 0-1000."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    c, cz = (size - 1) / 2, (slices - 1) / 2
    dz = ((k - cz) / (slices * 0.52)) ** 2
    d = dz + ((y - c) / (size * 0.44)) ** 2 + ((x - c) / (size * 0.37)) ** 2
    img = np.where(d < 1, 900.0, 0.0)
    inner = dz / 0.81 + ((y - c) / (size * 0.44 * 0.9)) ** 2 + ((x - c) / (size * 0.37 * 0.9)) ** 2
    img = np.where(inner < 1, 450.0, img)
    lk, ly, lx = lesion
    ball = ((k - lk) * size / slices) ** 2 + (y - ly) ** 2 + (x - lx) ** 2 < radius**2
    img = np.where(ball, 1000.0, img)
    rng = np.random.default_rng(k)
    img += rng.normal(0, 20, img.shape) * (img > 0)
    return np.clip(img, 0, 1000).astype(np.int16)


def write_nifti(path: Path, slices: int, size: int, pixel_mm: float, slice_mm: float) -> None:
    """An int16 NIfTI-1 (RAS voxel order) written slice by slice: header, then each z plane."""
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((size, size, slices))
    hdr.set_data_dtype(np.int16)
    aff = np.diag([pixel_mm, pixel_mm, slice_mm, 1.0])
    aff[:3, 3] = [-(size - 1) / 2 * pixel_mm, -(size - 1) / 2 * pixel_mm, -(slices - 1) / 2 * slice_mm]
    hdr.set_qform(aff, 1)
    hdr.set_sform(aff, 1)
    hdr.set_data_offset(352)
    lesion = (slices // 2, int(size * 0.35), int(size * 0.6))
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(hdr.binaryblock + b"\x00" * 4)
        for k in range(slices):  # display [row, col] -> voxel [i (R), j (A)]: col runs to the left, row to the back
            plane = head_slice(k, slices, size, lesion, size * 0.08)[::-1, ::-1].T
            fh.write(np.asfortranarray(plane).tobytes(order="F"))


def write_series(folder: Path, slices: int, size: int) -> None:
    from brainscan.scans.synthetic import dicom_series

    folder.mkdir(parents=True, exist_ok=True)
    lesion = (slices // 2, int(size * 0.35), int(size * 0.6))
    frames = np.stack([head_slice(k, slices, size, lesion, size * 0.08) for k in range(slices)]).astype(np.uint16)
    for name, data in dicom_series(frames, step=5.0, spacing=(0.45, 0.45)):
        (folder / name).write_bytes(data)


CASE = r"""
import json, sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
from brainscan.check import load_checker
from brainscan.scans.studies import studies_from_paths
from brainscan.volume_check import check_volume
model = load_checker(sys.argv[2])
base = hwm()
t = time.perf_counter()
volume = studies_from_paths([sys.argv[1]])[0].load()
t_read = time.perf_counter()
result = check_volume(model, volume, "gradcam", tta=True)
t_end = time.perf_counter()
print(json.dumps({"shape": list(volume.data.shape), "read_s": t_read - t, "check_s": t_end - t_read,
                  "total_s": t_end - t, "checked": len(result.slices.checked), "label": result.prediction.label,
                  "peak_slice": result.answer.peak_slice, "model_loaded_mb": base, "peak_mb": hwm(),
                  "tensorflow": any(m.startswith("tensorflow") for m in sys.modules)}))
"""


def run_case(path: Path, model: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", CASE, str(path), model], capture_output=True, text=True, env=env,
                       cwd=ROOT, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "default"))
    parser.add_argument("--keep", type=Path, help="write the volumes here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cases = {"200 slices, 1 mm (256x256x200 NIfTI)": folder / "head_1mm_200.nii.gz",
                 "512x512x400 NIfTI": folder / "head_512_400.nii.gz",
                 "22-slice 512x512 DICOM series": folder / "series_22"}
        write_nifti(cases["200 slices, 1 mm (256x256x200 NIfTI)"], 200, 256, 1.0, 1.0)
        write_nifti(cases["512x512x400 NIfTI"], 400, 512, 0.5, 0.5)
        write_series(cases["22-slice 512x512 DICOM series"], 22, 512)
        for label, path in cases.items():
            r = run_case(path, args.model)
            print(f"{label}: read {r['read_s']:.2f} s, every slice and the peak slice in full {r['check_s']:.2f} s "
                  f"(total {r['total_s']:.2f} s, {r['checked']} slices checked, answer {r['label']}), peak memory "
                  f"{r['peak_mb']:.0f} MB (model loaded: {r['model_loaded_mb']:.0f} MB); TensorFlow imported: "
                  f"{r['tensorflow']}")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BRAINSCAN_MODEL": args.model}
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "brainscan", "predict", "--cam",
                            str(cases["200 slices, 1 mm (256x256x200 NIfTI)"])], capture_output=True, text=True,
                           env=env, cwd=ROOT)
        line = json.loads(r.stdout.splitlines()[-1])
        print(f"python -m brainscan predict --cam on the 200-slice volume: {time.perf_counter() - t:.2f} s wall "
              f"(process start and model loading included), label {line.get('label')}, peak slice "
              f"{line.get('peak_slice')}, cam_peak_ras_mm {line.get('cam_peak_ras_mm')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
