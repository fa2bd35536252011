"""A volume: voxels plus geometry, in one canonical frame and one display convention (NumPy only).

Every volume (a NIfTI file, a DICOM series, a stack of slices) becomes a :class:`Volume` whose ``data`` is
indexed ``[slice, row, col]`` with

* slices from inferior to superior (the axial slices, ``data[k]``),
* rows from anterior (top of the image) to posterior,
* columns from the patient's right (left of the image) to the patient's left: the radiological convention
  that every training source and brainscan's single DICOM slices use (``DISPLAY_CONVENTION``).

``affine`` maps ``(col, row, slice, 1)`` to RAS+ millimetres, nibabel's convention: +x toward the patient's
right, +y anterior, +z superior. DICOM's LPS (+x left, +y posterior) is converted before a volume is built.
Reorienting only flips and permutes axes (NumPy views, no copy), so an oblique volume is shown along its nearest
axes and says so, while its millimetres stay exact.

Sagittal and coronal acquisitions are resliced to axial by the same permutation; where the two in-plane
spacings then differ, :meth:`Volume.slice_pixels` resamples the slice to square pixels.

Voxels stay in their stored type (uint8, int16, ...); a slice is windowed to [0, 1] when it is asked for, so a
512 x 512 x 400 int16 volume holds 200 MB and no float copy of it is ever made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from brainscan.errors import ScanError

DISPLAY_CONVENTION = ("radiological: anterior at the top, the patient's right on the image's left; coronal and "
                      "sagittal views with superior at the top (sagittal: anterior on the left)")
# Limits checked from a header before anything is decoded (NIfTI and DICOM series alike).
MAX_SLICES: int = 1024
MAX_SIDE: int = 1024
MAX_VOXELS: int = 512 * 512 * 512
MAX_DISPLAY_SIDE: int = 1024  # a resampled slice is at most this large
OBLIQUE_NOTE_DEG: float = 1.0  # tilt above which a volume is said to be oblique
WINDOW_PERCENTILES = (0.5, 99.5)
WINDOW_SAMPLE: int = 2_000_000  # voxels sampled for the window


def check_size(label: str, shape: tuple[int, ...], itemsize: int) -> None:
    """Refuse a volume from its declared size alone (ScanError): slices, side, voxels and decoded bytes."""
    from brainscan.scans import reader

    dims = [int(d) for d in shape[:3]]
    if len(dims) < 3 or min(dims) < 1:
        raise ScanError(f"{label} does not hold a 3-D volume (its size is {' x '.join(map(str, shape))}).")
    voxels = int(np.prod(np.asarray(dims, dtype=np.float64)))
    if voxels > MAX_VOXELS:
        raise ScanError(f"{label} declares {' x '.join(f'{d:,}' for d in dims)} = {voxels:,} voxels; at most "
                        f"{MAX_VOXELS:,} are accepted.")
    if max(dims) > max(MAX_SLICES, MAX_SIDE):
        raise ScanError(f"{label} is {' x '.join(map(str, dims))} voxels; at most {MAX_SLICES:,} along any axis "
                        "are accepted.")
    limit = min(reader.BUDGET.total, reader.MAX_DECODED_BYTES)
    if voxels * itemsize > limit:
        raise ScanError(f"{label} would need {voxels * itemsize / reader.MB:,.0f} MB once decoded; the limit is "
                        f"{limit / reader.MB:,.0f} MB.")


def check_affine(label: str, affine: np.ndarray) -> None:
    """A voxel-to-world matrix we can place slices with: finite, not singular (ScanError)."""
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ScanError(f"{label} has no usable voxel-to-world matrix (it holds missing or infinite values).")
    zooms = np.linalg.norm(a[:3, :3], axis=0)
    if np.any(zooms < 1e-6) or abs(np.linalg.det(a[:3, :3] / zooms)) < 1e-3:
        raise ScanError(f"{label} has a singular voxel-to-world matrix (two axes point the same way or one has "
                        "no length), so its slices cannot be placed.")


# --- orientation ------------------------------------------------------------------------------------

def axis_codes(affine: np.ndarray) -> str:
    """The nearest world direction of each voxel axis, as letters ('LPS', 'RAS', 'ASL', ...)."""
    out = []
    for a, w in enumerate(_assign(affine)):
        s = np.sign(affine[w, a])
        out.append(("LR", "PA", "IS")[w][int(s > 0)])
    return "".join(out)


def _assign(affine: np.ndarray) -> list[int]:
    """World axis (0 x, 1 y, 2 z) nearest to each of the three voxel axes, greedily by the largest cosine."""
    m = np.abs(np.asarray(affine, np.float64)[:3, :3])
    m = m / np.maximum(m.sum(axis=0, keepdims=True), 1e-12)
    out = [-1, -1, -1]
    free_w, free_a = {0, 1, 2}, {0, 1, 2}
    for _ in range(3):
        w, a = max(((w, a) for w in free_w for a in free_a), key=lambda wa: m[wa[0], wa[1]])
        out[a] = w
        free_w.discard(w)
        free_a.discard(a)
    return out


def obliquity_deg(affine: np.ndarray) -> float:
    """Largest angle between a voxel axis and the world axis it is shown along."""
    r = np.asarray(affine, np.float64)[:3, :3]
    r = r / np.linalg.norm(r, axis=0)
    return float(max(np.degrees(np.arccos(np.clip(abs(r[w, a]), 0.0, 1.0))) for a, w in enumerate(_assign(affine))))


def to_display(arr: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(data [slice, row, col], affine of (col, row, slice)) from voxels [i, j, k] with a voxel-to-RAS affine.

    Only flips and a transpose: views of arr. col runs toward the patient's left (-x), row toward posterior
    (-y), slice toward superior (+z)."""
    a = np.asarray(affine, np.float64).copy()
    world = _assign(a)
    target = {0: -1.0, 1: -1.0, 2: 1.0}  # the direction each world axis's display axis runs in
    view = arr
    for ax in range(3):
        w = world[ax]
        if np.sign(a[w, ax]) != target[w]:
            view = np.flip(view, axis=ax)
            n = arr.shape[ax]
            a[:3, 3] += a[:3, ax] * (n - 1)
            a[:3, ax] = -a[:3, ax]
    by_world = {w: ax for ax, w in enumerate(world)}
    order = [by_world[0], by_world[1], by_world[2]]  # voxel axes along x (col), y (row), z (slice)
    new_aff = np.eye(4)
    new_aff[:3, :3] = a[:3, order]
    new_aff[:3, 3] = a[:3, 3]
    data = np.transpose(view, (order[2], order[1], order[0]))  # [slice, row, col]
    return data, new_aff


# --- the volume ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Volume:
    data: np.ndarray = field(repr=False)  # [slice, row, col] in the stored type; see the module docstring
    affine: np.ndarray = field(repr=False)  # (col, row, slice, 1) -> RAS+ mm
    name: str
    kind: str  # "nifti", "dicom series", "stack"
    window: tuple[float, float]  # stored values shown as black and white
    notes: tuple[str, ...] = ()
    metadata: dict[str, object] = field(default_factory=dict)
    missing: frozenset[int] = frozenset()  # slices with no data (a gap in a DICOM series or a rebuilt stack)
    invert: bool = False  # MONOCHROME1

    @property
    def n_slices(self) -> int:
        return int(self.data.shape[0])

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(column, row, slice) spacing in mm."""
        col, row, sl = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(col), float(row), float(sl)

    @property
    def display_shape(self) -> tuple[int, int]:
        """(height, width) of an axial slice as shown (square pixels)."""
        return _square_shape(self.data.shape[1], self.data.shape[2], self.spacing[1], self.spacing[0])

    def _windowed(self, raw: np.ndarray) -> np.ndarray:
        lo, hi = self.window
        x = np.asarray(raw, dtype=np.float32)
        if x.dtype.kind == "f":
            x = np.nan_to_num(x, nan=lo, posinf=hi, neginf=lo)
        out = np.clip((x - np.float32(lo)) / np.float32(max(hi - lo, 1e-12)), 0.0, 1.0)
        return 1.0 - out if self.invert else out

    def slice_pixels(self, k: int) -> np.ndarray:
        """Axial slice k as float32 [0, 1], display convention, square pixels (see display_shape)."""
        if not 0 <= k < self.n_slices:
            raise ScanError(f"Slice {k} does not exist; this volume has slices 0 to {self.n_slices - 1}.")
        img = self._windowed(self.data[k])
        h, w = self.display_shape
        if img.shape != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if h * w < img.size else cv2.INTER_LINEAR)
        return np.ascontiguousarray(img, dtype=np.float32)

    def display_to_voxel(self, x: float, y: float) -> tuple[float, float]:
        """(col, row) voxel coordinates of a display pixel centre (x, y) of an axial slice."""
        h, w = self.display_shape
        return ((x + 0.5) * self.data.shape[2] / w - 0.5, (y + 0.5) * self.data.shape[1] / h - 0.5)

    def voxel_to_display(self, col: float, row: float) -> tuple[float, float]:
        h, w = self.display_shape
        return ((col + 0.5) * w / self.data.shape[2] - 0.5, (row + 0.5) * h / self.data.shape[1] - 0.5)

    def world(self, col: float, row: float, k: float) -> tuple[float, float, float]:
        """RAS+ mm of a voxel position."""
        x = self.affine @ np.array([col, row, k, 1.0])
        return float(x[0]), float(x[1]), float(x[2])

    def display_world(self, x: float, y: float, k: int) -> tuple[float, float, float]:
        """RAS+ mm of a display pixel (x, y) on axial slice k."""
        col, row = self.display_to_voxel(x, y)
        return self.world(col, row, k)

    def voxel_of_world(self, ras: tuple[float, float, float]) -> tuple[float, float, float]:
        """(col, row, slice) of a RAS+ mm position (inverse of world)."""
        v = np.linalg.solve(self.affine, np.array([*ras, 1.0]))
        return float(v[0]), float(v[1]), float(v[2])

    def coronal(self, row: int) -> np.ndarray:
        """The coronal plane through a row: superior at the top, the patient's right on the left; float32 [0, 1]
        resampled to square millimetres."""
        row = int(np.clip(row, 0, self.data.shape[1] - 1))
        img = self._windowed(self.data[::-1, row, :])
        h, w = _square_shape(img.shape[0], img.shape[1], self.spacing[2], self.spacing[0])
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR) if img.shape != (h, w) else img

    def sagittal(self, col: int) -> np.ndarray:
        """The sagittal plane through a column: superior at the top, anterior on the left; float32 [0, 1]."""
        col = int(np.clip(col, 0, self.data.shape[2] - 1))
        img = self._windowed(self.data[::-1, :, col])
        h, w = _square_shape(img.shape[0], img.shape[1], self.spacing[2], self.spacing[1])
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR) if img.shape != (h, w) else img

    def summary(self) -> dict[str, object]:
        """Size and geometry in words and numbers (no identifiers: the source's geometry only)."""
        col, row, sl = self.spacing
        return {"slices": self.n_slices, "rows": int(self.data.shape[1]), "columns": int(self.data.shape[2]),
                "voxel_size_mm": [round(col, 3), round(row, 3), round(sl, 3)], **self.metadata}


def _square_shape(rows: int, cols: int, row_mm: float, col_mm: float) -> tuple[int, int]:
    """(height, width) with square pixels at the finer of the two spacings, at most MAX_DISPLAY_SIDE."""
    if row_mm <= 0 or col_mm <= 0 or abs(row_mm - col_mm) <= 0.01 * max(row_mm, col_mm):
        return rows, cols
    step = min(row_mm, col_mm)
    h, w = rows * row_mm / step, cols * col_mm / step
    scale = min(1.0, MAX_DISPLAY_SIDE / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def window_of(raw: np.ndarray) -> tuple[float, float]:
    """The 0.5-99.5 percentile of the stored values (a sample of at most WINDOW_SAMPLE voxels)."""
    flat = np.asarray(raw).ravel(order="K")  # a view for any contiguous array
    step = max(1, flat.size // WINDOW_SAMPLE)
    sample = flat[::step].astype(np.float32)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(sample, WINDOW_PERCENTILES))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def build(raw: np.ndarray, affine: np.ndarray, *, name: str, kind: str, notes: list[str] | None = None,
          metadata: dict | None = None, window: tuple[float, float] | None = None, missing: set[int] | None = None,
          invert: bool = False) -> Volume:
    """A Volume from voxels [i, j, k] and their voxel-to-RAS+ affine (checked), reoriented for display."""
    label = name or "This volume"
    check_affine(label, affine)
    notes = list(notes or [])
    codes = axis_codes(affine)
    tilt = obliquity_deg(affine)
    window = window or window_of(raw)
    data, disp = to_display(raw, affine)
    meta = dict(metadata or {})
    meta.setdefault("voxel_order", codes)
    meta.setdefault("acquired_plane", _plane_of(affine))
    if tilt > OBLIQUE_NOTE_DEG:
        notes.append(f"The volume is oblique ({tilt:.0f} degrees from the scanner axes): its slices are shown along "
                     "the nearest axes, not resampled; positions in millimetres use its exact geometry.")
    plane = meta["acquired_plane"]
    if plane in ("sagittal", "coronal"):
        notes.append(f"Acquired as {plane} slices; resliced to axial for the check.")
    if missing:
        # Missing slices were given in the source's slice order; follow them through the flips.
        missing = _moved_slices(missing, raw.shape, affine)
    return Volume(data, disp, name, kind, window, tuple(notes), meta, frozenset(missing or ()), invert)


def _plane_of(affine: np.ndarray) -> str:
    """The plane of the stored slices (the third voxel axis is their normal)."""
    return ("sagittal", "coronal", "axial")[_assign(affine)[2]]


def _moved_slices(missing: set[int], shape: tuple[int, ...], affine: np.ndarray) -> set[int]:
    """Indices along the third voxel axis -> display slice indices, when that axis becomes the slice axis."""
    world = _assign(affine)
    if world[2] != 2:
        return set()  # the stored slices are not axial: a missing one is a blank column, not a slice
    flipped = np.sign(affine[2, 2]) < 0
    n = shape[2]
    return {n - 1 - k if flipped else k for k in missing}


def from_slices(slices: list[np.ndarray | None], *, name: str, kind: str = "stack", pixel_mm: float = 1.0,
                slice_mm: float = 1.0, notes: list[str] | None = None, metadata: dict | None = None,
                window: tuple[float, float] | None = None) -> Volume:
    """A volume from axial display slices (H x W, already anterior-up and radiological), inferior first; None
    marks a missing slice (blank, not checked). The geometry is nominal: pixel_mm in-plane, slice_mm apart,
    centred on the origin."""
    shapes = {s.shape for s in slices if s is not None}
    if len(shapes) != 1:
        raise ScanError(f"{name or 'This stack'}: its slices differ in size or there are none.")
    (h, w), = shapes
    dtype = next(s.dtype for s in slices if s is not None)
    data = np.zeros((len(slices), h, w), dtype=dtype)
    for k, s in enumerate(slices):
        if s is not None:
            data[k] = s
    aff = np.diag([-pixel_mm, -pixel_mm, slice_mm, 1.0])  # col -> -x (left), row -> -y (posterior), slice -> +z
    aff[:3, 3] = [(w - 1) / 2 * pixel_mm, (h - 1) / 2 * pixel_mm, -(len(slices) - 1) / 2 * slice_mm]
    missing = {k for k, s in enumerate(slices) if s is None}
    present = data[[k for k in range(len(slices)) if k not in missing]]
    return Volume(data, aff, name, kind, window or window_of(present), tuple(notes or ()), dict(metadata or {}),
                  frozenset(missing))


# --- labels on the views -----------------------------------------------------------------------------

VIEW_LABELS = {  # (top, bottom, left, right) of each view in the display convention
    "axial": ("A", "P", "R", "L"),
    "coronal": ("S", "I", "R", "L"),
    "sagittal": ("S", "I", "A", "P"),
}


def labelled(img: np.ndarray, view: str) -> np.ndarray:
    """An RGB uint8 copy of a [0, 1] (or uint8 RGB) view with its direction letters at the four edges."""
    if img.ndim == 2:
        rgb = cv2.cvtColor(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    else:
        rgb = np.ascontiguousarray(img).copy()
    h, w = rgb.shape[:2]
    scale = max(0.35, min(h, w) / 400)
    thick = max(1, round(scale * 2))
    top, bottom, left, right = VIEW_LABELS[view]
    for text, (x, y) in ((top, (w // 2, 0)), (bottom, (w // 2, h)), (left, (0, h // 2)), (right, (w, h // 2))):
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        px = int(np.clip(x - tw // 2, 3, w - tw - 3))
        py = int(np.clip(y + th // 2, th + 3, h - 4))
        cv2.putText(rgb, text, (px, py), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(rgb, text, (px, py), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 230, 0), thick, cv2.LINE_AA)
    return rgb


# --- which slices hold head -----------------------------------------------------------------------------------

HEAD_LEVEL = 0.1  # windowed intensity above which a (blurred) pixel counts as head
HEAD_SIDE = 64  # slices are judged on a copy this small


def head_fractions(volume: Volume) -> np.ndarray:
    """Per axial slice, the share of the slice that is head (blurred intensity above HEAD_LEVEL of the volume's
    window); 0 for a missing slice."""
    out = np.zeros(volume.n_slices, np.float32)
    h, w = volume.data.shape[1:]
    scale = min(1.0, HEAD_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    for k in range(volume.n_slices):
        if k in volume.missing:
            continue
        small = cv2.resize(volume._windowed(volume.data[k]), size, interpolation=cv2.INTER_AREA)
        out[k] = float((cv2.GaussianBlur(small, (3, 3), 0) > HEAD_LEVEL).mean())
    return out


def head_slices(volume: Volume, min_share: float = 0.02, relative: float = 0.15) -> tuple[list[int], list[int]]:
    """(slices to check, slices outside the head): a slice is outside the head when its head share is below
    min_share or below ``relative`` times the volume's largest one. Missing slices are in neither list."""
    share = head_fractions(volume)
    top = float(share.max()) if share.size else 0.0
    keep, out = [], []
    for k in range(volume.n_slices):
        if k in volume.missing:
            continue
        (keep if share[k] >= max(min_share, relative * top) else out).append(k)
    return keep, out


def file_stem(name: str) -> str:
    """A volume's name as a file-name stem: 'head.nii.gz' -> 'head', 'IM0001.dcm and 21 more (DICOM series, 22
    files)' -> 'IM0001_and_21_more'."""
    base = re.split(r"[\\/]", name.split(" (")[0].rstrip("/\\"))[-1] or "volume"
    for suffix in (".nii.gz", ".nii", ".zip", ".gz", ".dcm", ".dicom"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    base = base.replace(".dcm ", " ")
    return re.sub(r"[^\w-]+", "_", base).strip("_") or "volume"
