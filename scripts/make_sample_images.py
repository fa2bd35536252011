"""Regenerate everything in ``sample_images/`` from real public slices (run from the repository root).

    python scripts/make_sample_images.py ../shared/data

The images are real axial MRI slices from data sets whose licences allow sharing them with attribution
(lgg-tcga-slices, brats2013-slices, ixi-t1-midaxial, ms-ljubljana-slices; never brain-tumor-mri or
navoneel-yes-no), plus a drawn "not an MRI" picture. The DICOM files are written by this script around a real
slice's pixels: their headers are the project's own and hold no identifier of the person scanned: no patient
code (the patient ID is empty, the name "Anonymous^Sample"), no source case code in any text, no dates or times, and
UIDs derived only from fixed strings and the output file's name, never from the source. Output is deterministic.
Needs the runtime requirements only.
"""

from __future__ import annotations

import argparse
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "sample_images"
DEFAULT_DATA = ROOT.parent / "shared" / "data"

SIZE = 256  # side of the drawn picture
SEED = 20240611

# DICOM pixel scaling: stored = round(v * STORED_FULL) with v in [0, 1]; 12 bits stored.
BITS_STORED = 12
STORED_FULL = 4000
RESCALE_SLOPE = 0.5
RESCALE_INTERCEPT = 0.0
NOMINAL_SPACING_MM = 0.9375  # the public slices carry no geometry: a nominal 240 mm field of view on 256 pixels
SLICE_SPACING_MM = 3.0

PATIENT_NAME = "Anonymous^Sample"
PATIENT_ID = ""  # no patient code at all
UID_SALT = "brainscan-sample-images-v3"  # with the output file name only: nothing of the source goes into a UID

LGG = "lgg-tcga-slices"
LGG_CASE, LGG_SLICE, LGG_FRAMES = "TCGA_EZ_7264_20010816", 19, range(16, 22)  # a case the case library lacks
# Said in the DICOM header: the collections and licences, not the case (its code holds a date; README.md names the
# source files for attribution).
LGG_SOURCE = ("TCGA-LGG (The Cancer Imaging Archive, CC BY 3.0) in the LGG Segmentation Dataset of Buda et al. 2019 "
              "(CC BY-NC-SA 4.0)")
# file name -> (data set, file inside it)
REAL_PNGS = {
    "lgg_glioma_flair.png": (LGG, f"glioma/flair_{LGG_CASE}_{LGG_SLICE:03d}.jpg"),
    "lgg_glioma_t1c.png": (LGG, f"glioma/t1c_{LGG_CASE}_{LGG_SLICE:03d}.jpg"),
    "brats_glioma_t1c.png": ("brats2013-slices", "images/brats_2013_pat0005_1_t1c_z101.png"),
    "ixi_healthy_t1.png": ("ixi-t1-midaxial", "notumor/IXI100.png"),
    "ms_flair_no_tumour.png": ("ms-ljubljana-slices", "notumor/flair_patient19_study1_021.jpg"),
}


class SliceGeometry:
    """Nominal plane geometry for a 2D slice without any (DICOM ImagePositionPatient and PixelSpacing)."""

    def __init__(self, shape: tuple[int, int], spacing: float = NOMINAL_SPACING_MM):
        self.shape, self.spacing = shape, spacing

    def top_left_lps(self, k: int) -> list[float]:
        h, w = self.shape
        return [round(-(w - 1) / 2 * self.spacing, 4), round(-(h - 1) / 2 * self.spacing, 4),
                round(k * SLICE_SPACING_MM, 4)]


# --------------------------------------------------------------------------- writers
def png_bytes(arr: np.ndarray) -> bytes:
    buf = BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def to_u8(img: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(img, 0, 1) * 255.0).astype(np.uint8)


def to_stored(img: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(img, 0, 1) * STORED_FULL).astype(np.uint16)


def gray(data: Path, dataset: str, file: str) -> np.ndarray:
    img = cv2.imread(str(data / dataset / file), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise SystemExit(f"cannot read {data / dataset / file}: pass the shared data folder")
    return img


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


def dicom_bytes(frames: np.ndarray, *, name: str, framing: SliceGeometry, ks: list[int], monochrome1: bool = False,
                description: str, source: str) -> bytes:
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
    # Patient / study: anonymous, no patient code, no dates (type 2 elements present and empty).
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
    ds.StudyDescription = "BrainScan sample: public slice, header holds no identifiers"
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
    ds.ImageComments = (f"Pixels: {source}. Header written by BrainScan's sample generator; it holds no "
                         "identifier of the person scanned. Not for diagnosis.")[:10240]
    spacing = framing.spacing
    ds.PixelSpacing = [spacing, spacing]
    ds.SliceThickness = 1.0
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    if multi:
        ds.ConversionType = "WSD"
        ds.NumberOfFrames = pixels.shape[0]
        ds.SpacingBetweenSlices = SLICE_SPACING_MM
        ds.SliceLocationVector = [framing.top_left_lps(k)[2] for k in ks]
        ds.FrameIncrementPointer = 0x00182005  # Slice Location Vector
        ds.ImagePositionPatient = framing.top_left_lps(ks[0])
    else:
        ds.ScanningSequence = "RM"  # unknown: the public slice carries no acquisition parameters
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
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
def build(data: Path = DEFAULT_DATA) -> dict[str, bytes]:
    """All sample files as {file name: bytes}."""
    files: dict[str, bytes] = {name: png_bytes(gray(data, *src)) for name, src in REAL_PNGS.items()}
    flair = gray(data, *REAL_PNGS["lgg_glioma_flair.png"]).astype(np.float32) / 255.0
    stack = np.stack([gray(data, LGG, f"glioma/flair_{LGG_CASE}_{k:03d}.jpg") for k in LGG_FRAMES])
    stack = stack.astype(np.float32) / 255.0
    geometry = SliceGeometry(flair.shape)
    desc = "AX FLAIR"  # no case code, no slice number of the source
    files["lgg_glioma_flair_16bit.png"] = png_bytes(to_stored(flair))
    files["lgg_glioma_flair.dcm"] = dicom_bytes(to_stored(flair), name="lgg_glioma_flair", framing=geometry,
                                                ks=[LGG_SLICE], description=desc, source=LGG_SOURCE)
    files["lgg_glioma_monochrome1.dcm"] = dicom_bytes(to_stored(flair), name="lgg_glioma_monochrome1",
                                                      framing=geometry, ks=[LGG_SLICE], monochrome1=True,
                                                      description=desc + " MONOCHROME1", source=LGG_SOURCE)
    files["lgg_glioma_multiframe"] = dicom_bytes(to_stored(stack), name="lgg_glioma_multiframe", framing=geometry,
                                                 ks=list(LGG_FRAMES), description=f"AX FLAIR, {len(LGG_FRAMES)} slices",
                                                 source=LGG_SOURCE)
    files["not_mri_photo.png"] = png_bytes(not_mri_photo())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: sample_images/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    built = build(args.data)
    for old in args.out.iterdir():  # files of an earlier set that this one no longer makes
        if old.is_file() and old.name != "README.md" and old.name not in built:
            old.unlink()
    total = 0
    for name, data in built.items():
        (args.out / name).write_bytes(data)
        total += len(data)
        print(f"{name:36s} {len(data):>9,d} bytes")
    print(f"{'total':36s} {total:>9,d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
