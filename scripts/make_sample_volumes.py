"""Regenerate sample_images/volumes/ (run from the repository root): the Scan page's sample volumes.

    python scripts/make_sample_volumes.py ../shared/data

* ``ms_flair_volume.nii.gz``: a real clinical NIfTI-1 volume, tumour-free (multiple sclerosis): ms-ljubljana-volumes'
  patient01_study1_FLAIR.nii.gz (CC BY), cropped to the head and averaged over 2 x 2 pixels in-plane to keep the
  repository small. Its scanner geometry is kept (LPS voxel order, its oblique voxel-to-world matrix, adjusted
  for the crop and the averaging), uint16 voxels; the header's free-text fields are replaced by our own.
* ``lgg_glioma_flair_series.zip``: one lgg-tcga case of the held-out institution (HT, never trained on), its
  FLAIR slices written as one DICOM series (one file per slice in the zip). The source JPEGs carry no geometry,
  so it is nominal (0.9375 mm pixels, LGG_HEAD_MM over the case's slice count between slices, as
  brainscan.evaluation.volumes assumes); slices the data set leaves out (next to the tumour, and every second
  tumour-free one) stay missing, and BrainScan says so. The DICOM headers follow scripts/make_sample_images.py:
  no patient code, no case code, no dates; UIDs from a fixed string, the output name and the slice number.

Output is deterministic. Needs the runtime requirements only.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import zipfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "sample_images" / "volumes"
DEFAULT_DATA = ROOT.parent / "shared" / "data"

MS_SOURCE = ("ms-ljubljana-volumes", "patient01_study1_FLAIR.nii.gz")
LGG_CASE, LGG_SEQUENCE = "TCGA_HT_7684_19950816", "flair"
LGG_HEAD_MM = 150.0
PIXEL_MM = 0.9375
STORED_FULL = 4000
UID_SALT = "brainscan-sample-volumes-v1"
LGG_SOURCE = ("TCGA-LGG (The Cancer Imaging Archive, CC BY 3.0) in the LGG Segmentation Dataset of Buda et al. 2019 "
              "(CC BY-NC-SA 4.0)")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def ms_volume(data: Path) -> bytes:
    import nibabel as nib

    img = nib.load(str(data.joinpath(*MS_SOURCE)))
    arr = np.asanyarray(img.dataobj)
    head = arr > np.percentile(arr, 60)
    xs, ys = np.nonzero(head.any(axis=2))
    pad = 6
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, arr.shape[0])
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, arr.shape[1])
    x1, y1 = x0 + (x1 - x0) // 2 * 2, y0 + (y1 - y0) // 2 * 2  # even sides for the 2 x 2 average
    crop = arr[x0:x1, y0:y1, :].astype(np.float64)
    small = crop.reshape(crop.shape[0] // 2, 2, crop.shape[1] // 2, 2, crop.shape[2]).mean(axis=(1, 3))
    # voxel (i, j, k) of the small volume is the centre of old voxels (x0 + 2i + 0.5, y0 + 2j + 0.5, k)
    step = np.array([[2, 0, 0, x0 + 0.5], [0, 2, 0, y0 + 0.5], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)
    affine = img.affine @ step
    out = nib.Nifti1Image(np.rint(small).astype(np.uint16), affine)
    out.header.set_qform(affine, int(img.header["qform_code"]) or 1)
    out.header.set_sform(affine, int(img.header["sform_code"]) or 1)
    out.header["descrip"] = b"BrainScan sample; Lesjak et al. 2018, CC BY"
    out.header.set_xyzt_units("mm", "sec")
    return gzip.compress(out.to_bytes(), compresslevel=9, mtime=0)


def _uid(*parts: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[UID_SALT, *parts])


def lgg_series(data: Path) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage

    root = data / "lgg-tcga-slices"
    with open(root / "slices.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["case"] == LGG_CASE and r["sequence"] == LGG_SEQUENCE]
    rows.sort(key=lambda r: int(r["slice"]))
    last = max(int(r["slice"]) for r in rows)
    step = LGG_HEAD_MM / last
    name = "lgg_glioma_flair_series"
    series_uid, study_uid, frame_uid = _uid(name, "series"), _uid(name, "study"), _uid(name, "frame-of-reference")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for number, r in enumerate(rows, 1):
            img = cv2.imread(str(root / r["file"]), cv2.IMREAD_GRAYSCALE)
            stored = np.rint(img.astype(np.float64) / 255 * STORED_FULL).astype(np.uint16)
            k = int(r["slice"]) - 1
            h, w = stored.shape
            sop = _uid(name, "instance", str(k))
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, sop
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            meta.ImplementationVersionName = "BRAINSCAN_SAMPLE"
            ds = Dataset()
            ds.file_meta = meta
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
            ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop
            ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Anonymous^Sample", "", "", ""
            ds.PatientIdentityRemoved = "YES"
            ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.ReferringPhysicianName = study_uid, "", "", ""
            ds.StudyID, ds.AccessionNumber = "SAMPLE", ""
            ds.StudyDescription = "BrainScan sample: public slices, header holds no identifiers"
            ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "MR", series_uid, 1
            ds.SeriesDescription = "AX FLAIR"
            ds.BodyPartExamined, ds.PatientPosition = "BRAIN", "HFS"
            ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
            ds.Manufacturer = "BrainScan sample generator"
            ds.InstanceNumber = number
            ds.BurnedInAnnotation = "NO"
            ds.ImageComments = (f"Pixels: {LGG_SOURCE}. Header written by BrainScan's sample generator; it holds no "
                                "identifier of the person scanned. Geometry nominal. Not for diagnosis.")
            ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "RM", "NONE", "", "2D"
            ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "", "", ""
            ds.PixelSpacing = [PIXEL_MM, PIXEL_MM]
            ds.SliceThickness = round(step, 4)
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [round(-(w - 1) / 2 * PIXEL_MM, 4), round(-(h - 1) / 2 * PIXEL_MM, 4),
                                       round(k * step - LGG_HEAD_MM / 2, 4)]
            ds.SliceLocation = ds.ImagePositionPatient[2]
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.Rows, ds.Columns = h, w
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0.0, 1.0, "US"
            ds.WindowCenter, ds.WindowWidth = STORED_FULL / 2 + 0.5, STORED_FULL + 1.0
            ds.PixelData = stored.astype("<u2").tobytes()
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
            info = zipfile.ZipInfo(f"lgg_glioma_flair_series/IM{number:04d}.dcm", ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, out.getvalue(), compresslevel=9)
    return buf.getvalue()


def build(data: Path = DEFAULT_DATA) -> dict[str, bytes]:
    return {"ms_flair_volume.nii.gz": ms_volume(data), "lgg_glioma_flair_series.zip": lgg_series(data)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, blob in build(args.data).items():
        (args.out / name).write_bytes(blob)
        print(f"{name:32s} {len(blob):>9,d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
