"""Many files -> model inputs, shared by training and evaluation (their predictions:
brainscan.runtime.inference.run_model)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from brainscan.scans.preprocess import prepare, strip_skull


def load_gray(path: str) -> np.ndarray:
    """Ordinary image files: OpenCV's decode (as the shipped model was trained) after brainscan.scans.reader's checks
    (regular file, size, header pixel count) and inside its decode budget; anything else goes through
    brainscan.scans.io (DICOM)."""
    from brainscan.scans import reader
    from brainscan.scans.io import load_scan

    data = reader.read_file(path)
    if not path.lower().endswith((".dcm", ".dicom")):
        try:
            header = reader.open_image(data, reader.label_of(path))
        except reader.ScanError:
            header = None
        if header is not None:
            with header, reader.BUDGET.reserve(reader.decoded_size(header) + header.size[0] * header.size[1] * 5):
                img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
                if img is not None and min(img.shape) >= 16:
                    return img.astype(np.float32) / 255.0
    return load_scan(data, reader.label_of(path)).pixels


def prepare_one(path: str, size: int, strip_depth: float = 0.0) -> np.ndarray:
    """One file -> model input; with strip_depth > 0, of the skull-stripped image (preprocess.strip_skull)."""
    gray = load_gray(path)
    if strip_depth > 0:
        gray = strip_skull(gray, strip_depth)
    return prepare(gray, size, keep_steps=False).input


def prepare_paths(paths: list[str], size: int, workers: int = 2,
                  strip_depths: np.ndarray | None = None) -> tuple[np.ndarray, list[int], dict[int, str]]:
    """Prepare many files; returns (inputs n x size x size x 1, indices that worked, {index: error})."""
    errors: dict[int, str] = {}

    def work(i: int) -> np.ndarray | None:
        try:
            return prepare_one(paths[i], size, 0.0 if strip_depths is None else float(strip_depths[i]))
        except Exception as err:  # noqa: BLE001 - one bad file must not stop a run
            errors[i] = str(err) or type(err).__name__
            return None

    with ThreadPoolExecutor(workers) as pool:  # OpenCV releases the GIL
        arrays = list(pool.map(work, range(len(paths))))
    ok = [i for i, a in enumerate(arrays) if a is not None]
    inputs = np.stack([arrays[i] for i in ok]) if ok else np.zeros((0, size, size, 1), np.float32)
    return inputs, ok, errors
