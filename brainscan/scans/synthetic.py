"""Synthetic head phantoms for tests, tiny training sets and demos (never real patient data).

A phantom is a dark background, a bright skull ring, grey brain tissue with a little texture,
dark ventricles and, optionally, a bright round lesion whose position is returned.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def phantom(size: int = 64, lesion: bool = False, seed: int = 0, lesion_center: tuple[int, int] | None = None,
            lesion_radius: int | None = None) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Return (float32 size x size image in [0, 1], lesion centre (x, y) or None)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    c = size // 2 + int(rng.integers(-size // 20, size // 20 + 1))
    ax, ay = int(size * rng.uniform(0.34, 0.40)), int(size * rng.uniform(0.40, 0.45))
    cv2.ellipse(img, (c, size // 2), (ax, ay), 0, 0, 360, 0.9, -1)  # skull
    cv2.ellipse(img, (c, size // 2), (ax - max(2, size // 24), ay - max(2, size // 24)), 0, 0, 360, 0.45, -1)  # brain
    vw, vh = max(1, size // 16), max(2, size // 8)
    cv2.ellipse(img, (c - vw, size // 2), (vw, vh), 10, 0, 360, 0.15, -1)  # ventricles
    cv2.ellipse(img, (c + vw, size // 2), (vw, vh), -10, 0, 360, 0.15, -1)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32) * (img > 0)
    centre = None
    if lesion:
        r = lesion_radius or max(2, size // 10)
        if lesion_center is None:
            angle = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(0.3, 0.55)
            lesion_center = (int(c + np.cos(angle) * dist * ax), int(size // 2 + np.sin(angle) * dist * ay))
        cv2.circle(img, lesion_center, r, 0.95, -1)
        centre = lesion_center
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.clip(img, 0, 1), centre


def write_dataset(root: str | Path, per_class: int = 12, size: int = 64,
                  classes: tuple[str, ...] = ("notumor", "tumor"), seed: int = 0) -> Path:
    """Write a tiny <root>/<class>/*.png dataset: 'notumor' phantoms have no lesion, others do."""
    root = Path(root)
    for ci, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img, _ = phantom(size, lesion=name != "notumor", seed=seed + 1000 * ci + i,
                             lesion_radius=max(2, size // (8 + 2 * ci)))
            cv2.imwrite(str(root / name / f"{name}_{i:03d}.png"), np.rint(img * 255).astype(np.uint8))
    return root


# --- volumes: a 3-D phantom, written as NIfTI or as a DICOM series (tests, bench, browser tests) -------------

def phantom_volume(slices: int = 24, size: int = 128, lesion: tuple[int, int, int] | None = None,
                   lesion_radius: int | None = None, seed: int = 0) -> np.ndarray:
    """A head as uint16 [slice, row, col] in brainscan's display order (slices inferior to superior, anterior at
    the top, the patient's right on the left): an ellipsoid skull and brain, two ventricles, and a bright sphere
    at lesion = (slice, row, col) when given. Values 0-1000."""
    rng = np.random.default_rng(seed)
    k, y, x = np.meshgrid(np.arange(slices), np.arange(size), np.arange(size), indexing="ij")
    cz, c = (slices - 1) / 2, (size - 1) / 2
    rz, ry, rx = slices * 0.52, size * 0.44, size * 0.37
    d = ((k - cz) / rz) ** 2 + ((y - c) / ry) ** 2 + ((x - c) / rx) ** 2
    vol = np.where(d < 1.0, 900.0, 0.0)
    inner = ((k - cz) / (rz * 0.9)) ** 2 + ((y - c) / (ry * 0.9)) ** 2 + ((x - c) / (rx * 0.9)) ** 2
    vol = np.where(inner < 1.0, 450.0, vol)
    for side in (-1, 1):
        dx = x - c - side * size * 0.07
        v = ((k - cz) / (rz * 0.3)) ** 2 + ((y - c) / (ry * 0.25)) ** 2 + (dx / (rx * 0.1)) ** 2
        vol = np.where(v < 1.0, 150.0, vol)
    if lesion is not None:
        r = lesion_radius or max(2, size // 10)
        lk, ly, lx = lesion
        ball = ((k - lk) * max(1.0, size / max(slices, 1) / 2)) ** 2 + (y - ly) ** 2 + (x - lx) ** 2 < r * r
        vol = np.where(ball, 1000.0, vol)
    vol = vol + rng.normal(0, 20, vol.shape) * (vol > 0)
    return np.clip(vol, 0, 1000).astype(np.uint16)


def nifti_bytes(data: np.ndarray, affine: np.ndarray, *, gz: bool = True, version: int = 1,
                slope: float | None = None, inter: float = 0.0) -> bytes:
    """A NIfTI file (voxels [i, j, k], voxel-to-RAS affine) written by nibabel, as bytes."""
    import gzip

    import nibabel as nib

    cls = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    img = cls(np.asarray(data), np.asarray(affine, np.float64))
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    raw = img.to_bytes()
    return gzip.compress(raw, compresslevel=1, mtime=0) if gz else raw


def dicom_series(frames: np.ndarray, *, orientation=(1, 0, 0, 0, 1, 0), first=(0.0, 0.0, 0.0),
                 spacing=(1.0, 1.0), step: float = 1.0, series: str = "1.2.826.0.1.3680043.8.498.1",
                 positions: list | None = None, instances: list[int] | None = None, enhanced: bool = False,
                 name: str = "IM", slope: float = 1.0) -> list[tuple[str, bytes]]:
    """A DICOM series of frames [n, rows, cols] (uint16 or int16): one file per frame (or one enhanced multi-frame
    file with per-frame positions), ImageOrientationPatient ``orientation`` (LPS), frame k at ``first`` + k * step
    along the normal unless ``positions`` gives each one. No patient identifier ("Phantom^Synthetic")."""
    from io import BytesIO

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    frames = np.asarray(frames)
    ori = np.asarray(orientation, np.float64)
    normal = np.cross(ori[:3], ori[3:])
    pos = positions or [list(np.asarray(first, np.float64) + k * step * normal) for k in range(len(frames))]

    def base(sop: str, uid: str) -> Dataset:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SOPClassUID, ds.SOPInstanceUID = sop, uid
        ds.PatientName, ds.PatientID, ds.Modality = "Phantom^Synthetic", "", "MR"
        ds.SeriesInstanceUID = series
        ds.StudyInstanceUID = series + ".1"
        ds.FrameOfReferenceUID = series + ".2"
        ds.Rows, ds.Columns = frames.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        bits = frames.dtype.itemsize * 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
        ds.PixelRepresentation = int(frames.dtype.kind == "i")
        return ds

    def save(ds: Dataset) -> bytes:
        buf = BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue()

    fmt = [float(v) for v in orientation]
    if enhanced:
        ds = base("1.2.840.10008.5.1.4.1.1.4.1", generate_uid(entropy_srcs=[series, "enhanced"]))  # Enhanced MR
        ds.NumberOfFrames = len(frames)
        shared = Dataset()
        measures, plane = Dataset(), Dataset()
        measures.PixelSpacing, measures.SliceThickness = list(spacing), step
        plane.ImageOrientationPatient = fmt
        shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = Sequence([measures]), Sequence([plane])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        per = []
        for p in pos:
            g, where = Dataset(), Dataset()
            where.ImagePositionPatient = [float(v) for v in p]
            g.PlanePositionSequence = Sequence([where])
            per.append(g)
        ds.PerFrameFunctionalGroupsSequence = Sequence(per)
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
        return [(f"{name}_enhanced.dcm", save(ds))]
    out = []
    for k, frame in enumerate(frames):
        ds = base(MRImageStorage, generate_uid(entropy_srcs=[series, str(k)]))
        ds.ImageOrientationPatient = fmt
        ds.ImagePositionPatient = [float(v) for v in pos[k]]
        ds.PixelSpacing = list(spacing)
        ds.SliceThickness = abs(step)
        ds.InstanceNumber = (instances or list(range(1, len(frames) + 1)))[k]
        if slope != 1.0:
            ds.RescaleSlope, ds.RescaleIntercept = slope, 0
        ds.PixelData = np.ascontiguousarray(frame).tobytes()
        out.append((f"{name}{k + 1:04d}.dcm", save(ds)))
    return out
