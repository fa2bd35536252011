"""DICOM series -> :class:`brainscan.scans.volume.Volume`: the files of one SeriesInstanceUID (or one enhanced
multi-frame file with per-frame positions), sorted by ImagePositionPatient along the slice normal.

Headers are read through brainscan.scans.dicom (slice_header: no pixels) and checked before any pixel is
decoded: one orientation, distinct positions, even spacing (a missing slice is put back as a blank slice and
said), the size limits of brainscan.scans.volume. InstanceNumber orders the slices only where the files carry
no positions (with a note: millimetres are then nominal). Pixels are decoded file by file (dicom.read_frames)
into one array of the stored type; DICOM's LPS millimetres become RAS+ for the volume's affine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainscan.errors import ScanError
from brainscan.scans import volume as vol
from brainscan.scans.dicom import SliceHeader, read_frames

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SAME_POSITION_MM = 0.01
EVEN_TOLERANCE = 0.1  # a spacing within 10% of the median counts as even; 2x the median +-10% as one missing slice


@dataclass(frozen=True)
class SeriesFile:
    name: str
    data: bytes
    header: SliceHeader


def positioned(h: SliceHeader) -> bool:
    """Frames that can be placed: an orientation and one position per frame."""
    return h.orientation is not None and len(h.positions) == h.frames and h.frames >= 1


def is_volume(files: Sequence[SeriesFile]) -> bool:
    """A group that makes a volume: two or more placeable frames, or two or more files of one series."""
    if len(files) == 1:
        h = files[0].header
        return positioned(h) and h.frames >= 2
    return len(files) >= 2


def _normal(orientation: tuple[float, ...]) -> np.ndarray:
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    n = np.cross(row, col)
    size = float(np.linalg.norm(n))
    if size < 1e-6:
        raise ScanError("The series' orientation tag is damaged (its row and column directions are parallel).")
    return n / size


def _check_orientations(files: Sequence[SeriesFile], label: str) -> tuple[float, ...] | None:
    found = [f.header.orientation for f in files if f.header.orientation is not None]
    if any(f.header.orientations_differ for f in files):
        raise ScanError(f"{label} mixes slice orientations within one file; it cannot be read as one volume.")
    if not found:
        return None
    first = np.array(found[0])
    for other in found[1:]:
        if np.max(np.abs(np.array(other) - first)) > 1e-3:
            from brainscan.scans.dicom import plane

            planes = sorted({plane(o) or "unknown" for o in found})
            kinds = " and ".join(planes) if len(planes) > 1 else "tilted differently"
            raise ScanError(f"{label} mixes slice orientations ({kinds}); drop the files of one orientation "
                            "to check them as a volume.")
    return tuple(found[0])


def assemble(files: Sequence[SeriesFile], name: str) -> vol.Volume:
    """One series -> Volume; ScanError (one sentence) when it cannot be one."""
    label = name or "This DICOM series"
    if any(f.header.colour for f in files):
        raise ScanError(f"{label} is in colour; only grayscale series can be checked as a volume.")
    orientation = _check_orientations(files, label)
    shapes = {(f.header.rows, f.header.cols) for f in files}
    if len(shapes) != 1:
        raise ScanError(f"{label} holds images of different sizes "
                        f"({', '.join(f'{c}x{r}' for r, c in sorted(shapes))}); it cannot be one volume.")
    notes: list[str] = []
    frames = [(fi, j) for fi, f in enumerate(files) for j in range(f.header.frames)]
    rows, cols = shapes.pop()
    itemsize = max(f.header.bytes_per_pixel for f in files)
    vol.check_size(label, (cols, rows, len(frames)), itemsize)
    spacing = next((f.header.spacing for f in files if f.header.spacing), None)
    if spacing is None:
        notes.append("The files give no pixel spacing; 1 mm was assumed, so millimetres are nominal.")
        spacing = (1.0, 1.0)
    if orientation is None:
        notes.append("The files give no orientation; they were taken as axial slices (front at the top, the "
                     "patient's right on the left), so directions and millimetres are nominal.")
        orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    normal = _normal(orientation)
    if all(positioned(f.header) for f in files):
        pos = np.array([files[fi].header.positions[j] for fi, j in frames], dtype=np.float64)
        order, slots, step, origin = _place(pos, normal, files, frames, label, notes)
    else:
        order, slots, step, origin = _by_instance(files, frames, label, notes)
    missing = set(range(slots)) - {slot for _, slot in order}
    from brainscan.scans import reader

    with reader.BUDGET.reserve(slots * rows * cols * itemsize, label):  # the series' voxels, while they are decoded
        raw, window, monochrome1, meta = _decode(files, frames, order, slots, rows, cols, label)
    row_dir, col_dir = np.array(orientation[:3]), np.array(orientation[3:])
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[1]  # along a row: the column index grows (PixelSpacing[1])
    lps[:3, 1] = col_dir * spacing[0]  # down a column: the row index grows (PixelSpacing[0])
    lps[:3, 2] = normal * step
    lps[:3, 3] = origin
    meta.update({"series_files": len(files), "slices_in_series": len(frames)})
    if missing:
        meta["missing_slices"] = len(missing)
    return vol.build(raw.transpose(2, 1, 0), LPS_TO_RAS @ lps, name=name, kind="dicom series", notes=notes,
                     metadata=meta, window=window, missing=missing, invert=monochrome1)


def _place(pos: np.ndarray, normal: np.ndarray, files: Sequence[SeriesFile], frames: list[tuple[int, int]],
           label: str, notes: list[str]) -> tuple[list[tuple[int, int]], int, float, np.ndarray]:
    """Sort frames along the normal; returns ((frame index, slot) pairs, number of slots, step in mm, origin)."""
    along = pos @ normal
    idx = sorted(range(len(frames)), key=lambda i: (round(along[i], 3), _instance(files, frames[i])))
    kept: list[int] = []
    repeats: dict[int, int] = {}
    for i in idx:
        if kept and np.linalg.norm(pos[i] - pos[kept[-1]]) < SAME_POSITION_MM:
            repeats[kept[-1]] = repeats.get(kept[-1], 1) + 1
            continue
        kept.append(i)
    if repeats:
        counts = {repeats.get(i, 1) for i in kept}
        if len(counts) == 1 and len(kept) > 1:
            k = counts.pop()
            raise ScanError(f"{label} holds {k} images at each of its {len(kept)} positions (several echoes or time "
                            "points: a 4-D series); drop the files of one of them.")
        if len(kept) == 1:
            raise ScanError(f"{label}: all its {len(frames)} images lie at the same position; it is no volume.")
        dup = sum(repeats.values()) - len(repeats)
        notes.append(f"{dup} image(s) repeat the position of another (duplicate positions); the first of each was "
                     "used.")
    z = along[kept]
    gaps = np.diff(z)
    step = float(np.median(gaps))
    if step <= SAME_POSITION_MM:
        raise ScanError(f"{label}: its images do not advance along the slice direction; it is no volume.")
    ratio = gaps / step
    slot_of = [0]
    if np.all(np.abs(ratio - 1) <= EVEN_TOLERANCE):
        slot_of = list(range(len(kept)))
    elif np.all(np.abs(ratio - np.rint(ratio)) <= EVEN_TOLERANCE * np.rint(ratio)) and ratio.max() < 8:
        for r in np.rint(ratio).astype(int):
            slot_of.append(slot_of[-1] + int(r))
        lost = slot_of[-1] + 1 - len(kept)
        where = [f"{z[i]:.1f} and {z[i + 1]:.1f} mm" for i, r in enumerate(np.rint(ratio)) if r > 1][:3]
        notes.append(f"{lost} slice(s) missing from the series (between {'; '.join(where)} along the slice "
                     "direction): shown blank and not checked.")
    else:
        slot_of = list(range(len(kept)))
        step = float((z[-1] - z[0]) / (len(kept) - 1))
        off = float(np.max(np.abs(z - (z[0] + step * np.arange(len(kept))))))
        notes.append(f"The slice spacing is uneven ({gaps.min():.2f} to {gaps.max():.2f} mm); slices were placed "
                     f"{step:.2f} mm apart, so positions along the slice direction may be off by up to {off:.1f} mm.")
    origin = pos[kept[0]]
    return [(i, s) for i, s in zip(kept, slot_of, strict=True)], slot_of[-1] + 1, step, origin


def _instance(files: Sequence[SeriesFile], frame: tuple[int, int]) -> tuple[int, int]:
    h = files[frame[0]].header
    return (h.instance if h.instance is not None else 1 << 30, frame[1])


def _by_instance(files: Sequence[SeriesFile], frames: list[tuple[int, int]], label: str, notes: list[str]
                 ) -> tuple[list[tuple[int, int]], int, float, np.ndarray]:
    if any(files[fi].header.instance is None for fi, _ in frames):
        raise ScanError(f"{label}: its files give neither positions nor instance numbers, so the order of the "
                        "slices is unknown.")
    idx = sorted(range(len(frames)), key=lambda i: _instance(files, frames[i]))
    thickness = next((f.header.thickness for f in files if f.header.thickness), None) or 1.0
    notes.append(f"The files give no positions (ImagePositionPatient): slices were ordered by instance number and "
                 f"placed {thickness:g} mm apart, so millimetres along the slice direction are nominal.")
    return [(i, s) for s, i in enumerate(idx)], len(idx), float(thickness), np.zeros(3)


def _decode(files: Sequence[SeriesFile], frames: list[tuple[int, int]], order: list[tuple[int, int]], slots: int,
            rows: int, cols: int, label: str) -> tuple[np.ndarray, tuple[float, float], bool, dict]:
    """Decode every file once, placing its frames into [slot, row, col]; one modality rescale for the series, or
    modality values as float32 where the files' rescales differ."""
    by_file: dict[int, list[tuple[int, int]]] = {}
    for i, slot in order:
        fi, j = frames[i]
        by_file.setdefault(fi, []).append((j, slot))
    raw: np.ndarray | None = None
    scales: dict[int, tuple[float, float]] = {}
    meta: dict = {}
    mono1 = False
    for fi in sorted(by_file):
        got = read_frames(files[fi].data)
        if got.pixels.shape[1:] != (rows, cols):
            raise ScanError(f"{label}: {files[fi].name} is not the size its header declares.")
        if raw is None:
            raw = np.zeros((slots, rows, cols), dtype=got.pixels.dtype)
            meta, mono1 = dict(got.metadata), got.monochrome1
        elif got.pixels.dtype != raw.dtype:
            raw = raw.astype(np.promote_types(raw.dtype, got.pixels.dtype))
        for j, slot in by_file[fi]:
            raw[slot] = got.pixels[j]
            scales[slot] = (float(got.slope[j]), float(got.intercept[j]))
        del got
    assert raw is not None
    distinct = set(scales.values())
    if len(distinct) > 1:  # per-slice rescales: modality values, once
        vol.check_size(label, (cols, rows, slots), 4)
        out = np.zeros(raw.shape, np.float32)
        for slot, (s, b) in scales.items():
            out[slot] = raw[slot].astype(np.float32) * np.float32(s) + np.float32(b)
        raw = out
        window = vol.window_of(raw)
    else:
        s, b = distinct.pop() if distinct else (1.0, 0.0)
        window = vol.window_of(raw)  # stored units: a linear rescale leaves the windowed picture as it is
        mono1 ^= s < 0
    meta.pop("frames", None)
    return raw, window, mono1, meta
