"""Regenerate everything in ``sample_images/`` (run from the repository root).

    python scripts/make_sample_images.py

The images are made from the MNI ICBM152 2009a T1 template that ships *inside* the
nilearn package (``nilearn.datasets.load_mni152_template`` reads package data; nothing
is downloaded), plus a synthetic lesion drawn by this script. No patient data is used.

Dev-time only: needs ``nilearn`` and ``nibabel`` (see requirements-dev.txt) on top of
the runtime requirements (numpy, scipy, opencv, pillow, pydicom). The output is
deterministic: fixed seeds, UIDs derived from fixed strings, no dates or times.
"""

from __future__ import annotations

import argparse
import sys
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "sample_images"

SIZE = 256  # output side in pixels
FOV_MM = 208.0  # square field of view in mm -> pixel spacing FOV_MM / SIZE = 0.8125 mm
SEED = 20240611
PHANTOM_SEED = 7
TISSUE_GAIN = 0.85  # template white matter ~0.75 after this; the lesion rim reaches ~0.97

# World (MNI, RAS, mm) positions.
Z_VENTRICLES = 22.0  # axial slice through the bodies of the lateral ventricles
Z_SELLA = -20.0  # lower slice: suprasellar cistern / midbrain / temporal lobes
LESION_CENTER_RAS = (-29.0, -2.0, 23.0)  # LEFT corona radiata, lateral to the ventricle body (x < 0: left)
LESION_RADIUS_MM = 12.0
MULTIFRAME_COUNT = 9
MULTIFRAME_SPACING_MM = 4.0

# DICOM pixel scaling: stored = round(v * STORED_FULL) with v in [0, 1]; 12 bits stored.
BITS_STORED = 12
STORED_FULL = 4000
RESCALE_SLOPE = 0.5
RESCALE_INTERCEPT = 0.0

PATIENT_NAME = "Anonymous^Sample"
PATIENT_ID = "SAMPLE-0001"
UID_SALT = "brainscan-sample-images-v1"


# --------------------------------------------------------------------------- template
def load_template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T1 volume in [0, 1], white-matter probability in [0, 1], affine), both RAS+ at 1 mm.

    Both volumes are package data of nilearn (no network access).
    """
    import nibabel as nib
    from nilearn.datasets import load_mni152_template, load_mni152_wm_template

    t1 = load_mni152_template(resolution=1)
    wm = load_mni152_wm_template(resolution=1)
    if nib.aff2axcodes(t1.affine) != ("R", "A", "S") or not np.allclose(t1.affine, wm.affine):
        raise RuntimeError(f"unexpected template orientation {nib.aff2axcodes(t1.affine)}")
    vol = np.asarray(t1.get_fdata(), dtype=np.float32)
    wmp = np.asarray(wm.get_fdata(), dtype=np.float32)
    vol /= max(float(vol.max()), 1e-6)
    wmp /= max(float(wmp.max()), 1e-6)
    return np.clip(vol, 0, 1), np.clip(wmp, 0, 1), np.asarray(t1.affine, dtype=np.float64)


def world_to_voxel(affine: np.ndarray, xyz: tuple[float, float, float]) -> np.ndarray:
    return (np.linalg.inv(affine) @ np.array([*xyz, 1.0]))[:3]


# --------------------------------------------------------------------------- lesion
def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def add_lesion(vol: np.ndarray, wm: np.ndarray, affine: np.ndarray, seed: int = SEED) -> np.ndarray:
    """A T1 post-contrast-like lesion: enhancing irregular rim, darker necrotic core, hypointense oedema.

    Built in 3D so that consecutive slices show it growing and shrinking. Deterministic.
    """
    rng = np.random.default_rng(seed)
    out = vol.copy()
    center = world_to_voxel(affine, LESION_CENTER_RAS)
    stretch = (1.15, 1.0, 0.9)  # ellipsoid semi-axes, relative (x, y, z)
    max_reach = 2.5  # oedema never reaches beyond 2.5 radii (see below), so the box holds all of it
    half = int(np.ceil(LESION_RADIUS_MM * max(stretch) * max_reach)) + 2
    lo = np.maximum(np.floor(center).astype(int) - half, 0)
    hi = np.minimum(np.floor(center).astype(int) + half + 1, vol.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grid = np.meshgrid(*(np.arange(a, b, dtype=np.float32) for a, b in zip(lo, hi, strict=True)), indexing="ij")
    offset = [g - c for g, c in zip(grid, center, strict=True)]
    dist = np.sqrt(sum((o / st) ** 2 for o, st in zip(offset, stretch, strict=True)))

    shape = tuple(hi - lo)
    # Irregular outline: the radius depends on direction only (smooth noise read on a sphere around the
    # centre), so the lesion stays one connected, lobulated blob.
    bumps_field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=3.0)
    bumps_field /= max(float(bumps_field.std()), 1e-6)
    norm = np.maximum(np.sqrt(sum(o * o for o in offset)), 1e-3)
    probe = [c - a + LESION_RADIUS_MM * o / norm for c, a, o in zip(center, lo, offset, strict=True)]
    bumps = np.clip(ndimage.map_coordinates(bumps_field, probe, order=1, mode="nearest"), -2.0, 2.0)
    rho = dist / (LESION_RADIUS_MM * (1.0 + 0.2 * bumps))  # ~1 at the rim
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=1.2)
    texture /= max(float(texture.std()), 1e-6)
    fingers = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=2.5)
    fingers = np.clip(fingers / max(float(fingers.std()), 1e-6), -1.5, 1.5)

    tissue = out[box]
    brain = _smoothstep(0.08, 0.25, tissue)
    # Oedema: darker, spreads along white matter (finger-like), soft outer edge.
    reach = 1.0 - _smoothstep(1.0, 2.0 + 0.3 * fingers, dist / LESION_RADIUS_MM)  # ends by 2.45 radii
    oedema = 0.5 * reach * (0.25 + 0.75 * wm[box]) * brain
    v = tissue * (1.0 - oedema)
    # Necrotic core: dark grey, slightly mottled.
    inside = 1.0 - _smoothstep(0.5, 0.8, rho)
    core = 0.32 + 0.05 * texture
    v = v * (1.0 - inside) + core * inside
    # Enhancing rim: bright, thickness varies a little, Gaussian (soft) edge.
    rim = np.exp(-(((rho - 0.84) / (0.19 + 0.04 * np.clip(bumps, -1.5, 1.5))) ** 2))
    v = v + rim * (0.98 + 0.03 * texture - v) * 0.97
    out[box] = np.clip(v, 0.0, 1.0)
    return out


# --------------------------------------------------------------------------- slicing
def slice_index(affine: np.ndarray, z_mm: float) -> int:
    return int(round(world_to_voxel(affine, (0.0, 0.0, z_mm))[2]))


def axial_view(vol: np.ndarray, k: int) -> np.ndarray:
    """Axial slice k as radiologists view it: anterior up, patient's right on the viewer's left."""
    return vol[:, :, k].T[::-1, ::-1]


class Framing:
    """The same square crop and 256x256 resampling for every slice (so the multi-frame lines up)."""

    def __init__(self, vol: np.ndarray, affine: np.ndarray):
        footprint = (vol > 0.05).any(axis=2).T[::-1, ::-1]  # axial footprint in view coordinates
        rows, cols = np.nonzero(footprint)
        self.center_rc = ((rows.min() + rows.max()) / 2.0, (cols.min() + cols.max()) / 2.0)
        self.shape = footprint.shape
        self.affine = affine
        self.scale = FOV_MM / SIZE  # input pixels (1 mm) per output pixel

    def resample(self, view: np.ndarray) -> np.ndarray:
        # Output pixel (u, v) centre -> input (view) coordinates, as cv2.warpAffine expects.
        r0 = self.center_rc[0] - FOV_MM / 2.0 + 0.5 * self.scale - 0.5
        c0 = self.center_rc[1] - FOV_MM / 2.0 + 0.5 * self.scale - 0.5
        m = np.array([[self.scale, 0.0, c0], [0.0, self.scale, r0]], dtype=np.float64)
        out = cv2.warpAffine(view.astype(np.float32), m, (SIZE, SIZE), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        return np.clip(out, 0.0, 1.0)

    def top_left_lps(self, k: int) -> list[float]:
        """DICOM ImagePositionPatient (LPS, mm) of the centre of output pixel (0, 0) in slice k."""
        r = self.center_rc[0] - FOV_MM / 2.0 + 0.5 * self.scale - 0.5
        c = self.center_rc[1] - FOV_MM / 2.0 + 0.5 * self.scale - 0.5
        nx, ny = self.shape[1], self.shape[0]
        i, j = nx - 1 - c, ny - 1 - r  # view -> voxel indices
        x, y, z = (self.affine @ np.array([i, j, k, 1.0]))[:3]  # RAS mm
        return [round(-x, 4), round(-y, 4), round(z, 4)]


def add_noise(img: np.ndarray, seed: int, sigma: float = 0.008) -> np.ndarray:
    """Mild Rician noise, like magnitude MR images (deterministic)."""
    rng = np.random.default_rng(seed)
    re = img + rng.normal(0.0, sigma, img.shape)
    im = rng.normal(0.0, sigma, img.shape)
    return np.clip(np.sqrt(re * re + im * im), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- writers
def png_bytes(arr: np.ndarray) -> bytes:
    buf = BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(img, 0, 1) * 255.0).astype(np.uint8)


def to_stored(img: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(img, 0, 1) * STORED_FULL).astype(np.uint16)


def _uid(*parts: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[UID_SALT, *parts])  # deterministic, under pydicom's UID root


def _window(slope: float, intercept: float, monochrome1: bool) -> tuple[float, float]:
    """(WindowCenter, WindowWidth) mapping v = 0 -> black, v = 1 -> white, as displayed.

    DICOM LINEAR window: y = (x - (c - 0.5)) / (w - 1) + 0.5 on rescaled values x = slope * stored + intercept.
    """
    x_zero, x_full = intercept, STORED_FULL * slope + intercept  # rescaled values of v = 0 and v = 1
    width = (x_full - x_zero) + 1.0
    center = x_zero + (width - 1.0) / 2.0 + 0.5
    if monochrome1:  # stored' = max - stored, so x' = k - x; displayed = 1 - window(x') needs c' = k - c + 1
        k = (2**BITS_STORED - 1) * slope + 2 * intercept
        center = k - center + 1.0
    return round(center, 2), round(width, 2)


def dicom_bytes(frames: np.ndarray, *, name: str, framing: Framing, ks: list[int], monochrome1: bool = False,
                description: str) -> bytes:
    """frames: (H, W) or (N, H, W) uint16 stored values (MONOCHROME2 sense). Returns a Part-10 file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage

    multi = frames.ndim == 3
    sop_class = "1.2.840.10008.5.1.4.1.1.7.3" if multi else MRImageStorage  # Multi-frame Grayscale Word SC
    pixels = frames.astype(np.uint16)
    if monochrome1:
        pixels = (2**BITS_STORED - 1) - pixels

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = _uid(name, "instance")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "BRAINSCAN_SAMPLE"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    # Patient / study: obviously fake, no dates.
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.StudyInstanceUID = _uid("study")
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = "SAMPLE"
    ds.AccessionNumber = ""
    ds.StudyDescription = "BrainScan synthetic sample (not patient data)"
    ds.Modality = "MR"
    ds.SeriesInstanceUID = _uid(name, "series")
    ds.SeriesNumber = 1
    ds.SeriesDescription = description[:64]
    ds.BodyPartExamined = "BRAIN"
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = _uid("frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "BrainScan sample generator"
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "NO"
    ds.ImageComments = (
        "Synthetic sample: MNI ICBM152 2009a T1 template (Copyright (C) 1993-2004 Louis Collins, McConnell Brain "
        "Imaging Centre, MNI, McGill University) with an artificial lesion. Not patient data. Not for diagnosis."
    )
    spacing = round(FOV_MM / SIZE, 6)
    ds.PixelSpacing = [spacing, spacing]
    ds.SliceThickness = 1.0
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    if multi:
        ds.ConversionType = "WSD"
        ds.NumberOfFrames = pixels.shape[0]
        ds.SpacingBetweenSlices = MULTIFRAME_SPACING_MM
        ds.SliceLocationVector = [framing.top_left_lps(k)[2] for k in ks]
        ds.FrameIncrementPointer = 0x00182005  # Slice Location Vector
        ds.ImagePositionPatient = framing.top_left_lps(ks[0])
    else:
        ds.ScanningSequence = "RM"  # research mode: an averaged template, not one acquisition
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.RepetitionTime = ""
        ds.EchoTime = ""
        ds.EchoTrainLength = ""
        ds.ImagePositionPatient = framing.top_left_lps(ks[0])
        ds.SliceLocation = framing.top_left_lps(ks[0])[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    # Multi-frame Grayscale Word SC allows only the identity modality LUT; the MR file uses a real one.
    slope, intercept = (1.0, 0.0) if multi else (RESCALE_SLOPE, RESCALE_INTERCEPT)
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = intercept, slope, "US"
    ds.WindowCenter, ds.WindowWidth = _window(slope, intercept, monochrome1)
    ds.WindowCenterWidthExplanation = "BRAIN"
    ds.PixelData = np.ascontiguousarray(pixels).astype("<u2").tobytes()

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def not_mri_photo(seed: int = SEED) -> np.ndarray:
    """A colourful synthetic picture (gradient sky, sun, hills, boxes): clearly not an MRI."""
    rng = np.random.default_rng(seed)
    h = w = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / (SIZE - 1)
    img = np.zeros((h, w, 3), np.float32)  # RGB
    img[..., 0] = 0.35 + 0.5 * xx
    img[..., 1] = 0.55 + 0.35 * (1 - yy)
    img[..., 2] = 0.95 - 0.4 * yy
    img = (img * 255).astype(np.uint8)
    cv2.circle(img, (190, 60), 32, (255, 210, 40), -1, cv2.LINE_AA)
    pts = np.array([[0, 200], [60, 150], [120, 185], [180, 135], [255, 175], [255, 255], [0, 255]], np.int32)
    cv2.fillPoly(img, [pts], (40, 150, 60), cv2.LINE_AA)
    for _ in range(6):
        x, y = (int(v) for v in rng.integers(10, 200, 2))
        colour = tuple(int(c) for c in rng.integers(40, 256, 3))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(15, 45)), y + int(rng.integers(15, 45))), colour, -1)
    cv2.putText(img, "not an MRI", (40, 240), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    return img


# --------------------------------------------------------------------------- main
def build() -> dict[str, bytes]:
    """All sample files as {file name: bytes}."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script from anywhere
    from brainscan.scans.synthetic import phantom

    vol, wm, affine = load_template()
    vol *= TISSUE_GAIN  # headroom, so the enhancing rim can be brighter than white matter
    lesioned = add_lesion(vol, wm, affine)
    framing = Framing(vol, affine)

    def view(volume: np.ndarray, k: int) -> np.ndarray:
        return add_noise(framing.resample(axial_view(volume, k)), seed=SEED + k)

    k_mid, k_low = slice_index(affine, Z_VENTRICLES), slice_index(affine, Z_SELLA)
    normal, lesion, sella = view(vol, k_mid), view(lesioned, k_mid), view(vol, k_low)
    offsets = (np.arange(MULTIFRAME_COUNT) - MULTIFRAME_COUNT // 2) * MULTIFRAME_SPACING_MM
    ks = [slice_index(affine, Z_VENTRICLES + dz) for dz in offsets]
    stack = np.stack([view(lesioned, k) for k in ks])

    desc = f"AX T1-like template z={Z_VENTRICLES:g}mm synthetic lesion"
    files: dict[str, bytes] = {
        "template_axial_normal.png": png_bytes(to_u8(normal)),
        "template_axial_sella_normal.png": png_bytes(to_u8(sella)),
        "template_axial_lesion.png": png_bytes(to_u8(lesion)),
        "template_axial_lesion_16bit.png": png_bytes(to_stored(lesion)),
        "template_lesion.dcm": dicom_bytes(to_stored(lesion), name="template_lesion", framing=framing, ks=[k_mid],
                                           description=desc),
        "template_monochrome1.dcm": dicom_bytes(to_stored(lesion), name="template_monochrome1", framing=framing,
                                                ks=[k_mid], monochrome1=True, description=desc + " MONOCHROME1"),
        "template_multiframe": dicom_bytes(to_stored(stack), name="template_multiframe", framing=framing, ks=ks,
                                           description=f"AX T1-like template {MULTIFRAME_COUNT} slices lesion"),
    }
    img, _ = phantom(SIZE, lesion=True, seed=PHANTOM_SEED)
    files["phantom_lesion.png"] = png_bytes(to_u8(img))
    files["not_mri_photo.png"] = png_bytes(not_mri_photo())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: sample_images/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, data in build().items():
        (args.out / name).write_bytes(data)
        total += len(data)
        print(f"{name:36s} {len(data):>9,d} bytes")
    print(f"{'total':36s} {total:>9,d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
