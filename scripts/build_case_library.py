"""Build case_library/ (teaching cases with known truth) from the shared data sets, reproducibly.

    python scripts/build_case_library.py ../shared/data          # rewrites case_library/

Only sets whose licence allows redistribution with attribution are used (ixi-t1-midaxial CC BY-SA 3.0,
ms-ljubljana-slices CC BY, lgg-tcga-slices TCIA CC BY 3.0 in a CC BY-NC-SA 4.0 package, brats2013-slices
CC BY-NC-SA 3.0); never brain-tumor-mri or navoneel-yes-no (unclear licences). The choice of slices is a fixed
rule over each set's CSV (no randomness), so the output is the same on every run. Every image is stored as
an 8-bit grayscale PNG at its original geometry; masks (0/255) share the image's geometry.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "case_library"

SOURCES = {
    "lgg-tcga-slices": {
        "licence": "CC BY-NC-SA 4.0 (images: TCIA CC BY 3.0)",
        "attribution": "TCGA-LGG collection, The Cancer Imaging Archive (TCIA; Clark et al. 2013); FLAIR-abnormality "
                       "masks by Buda, Saha and Mazurowski, Computers in Biology and Medicine 2019 (LGG Segmentation "
                       "Dataset). Slice extracted and converted to 8-bit PNG by BrainScan.",
        "label": "TCGA lower-grade glioma (TCIA)",
    },
    "brats2013-slices": {
        "licence": "CC BY-NC-SA 3.0",
        "attribution": "BRATS 2013 challenge data (Menze et al., IEEE TMI 2015) as shipped with the DeepMedic "
                       "examples; whole-tumour mask from the challenge labels. Slice windowed to 8 bit by BrainScan.",
        "label": "BRATS 2013",
    },
    "ixi-t1-midaxial": {
        "licence": "CC BY-SA 3.0",
        "attribution": "IXI dataset (brain-development.org), Imperial College London; mid-axial slice registered "
                       "to MNI152 2009c (mad_seminar repository). Healthy adult volunteer.",
        "label": "IXI (healthy volunteers)",
    },
    "ms-ljubljana-slices": {
        "licence": "CC BY",
        "attribution": "Lesjak et al., Neuroinformatics 2018, 'A novel public MR image dataset of multiple "
                       "sclerosis patients with lesion segmentations based on multi-rater consensus' (University "
                       "of Ljubljana). Slice extracted by BrainScan.",
        "label": "Ljubljana multiple sclerosis (no tumour)",
    },
}

SEQ_NAMES = {"flair": "FLAIR", "t1": "T1", "t1c": "T1 with contrast", "t2": "T2"}


def _gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise SystemExit(f"cannot read {path}")
    return img


def _head_area(path: Path) -> int:
    """Pixels brighter than 10% of full scale: how much head or brain a slice shows."""
    return int((_gray(path) > 25).sum())


def _case(source: str, file: str, truth: str, sequence: str, original: str, mask: Path | None = None,
          note: str = "", group: str = "") -> dict:
    return {"source": source, "truth": truth, "sequence": sequence, "original_file": original,
            "_image": file, "_mask": mask, "note": note, "group": group}


def pick_lgg(root: Path) -> list[dict]:
    df = pd.read_csv(root / "slices.csv")
    out = []
    glioma = df[df.label == "glioma"]
    # Per institution, the slice with the largest tumour among slices present in all three sequences; three
    # institutions, so one patient shows the same slice on FLAIR, T1 and T1 with contrast.
    complete = glioma.groupby(["case", "slice"]).sequence.transform("nunique") == 3
    full = glioma[complete]
    for inst in ("CS", "DU", "HT"):
        best = full[full.institution == inst].sort_values(["tumour_pixels", "case", "slice"],
                                                          ascending=[False, True, True]).iloc[0]
        rows = full[(full.case == best.case) & (full.slice == best.slice)].sort_values("sequence")
        for _, r in rows.iterrows():
            out.append(_case("lgg-tcga-slices", r.file, "glioma", r.sequence, f"lgg-tcga-slices/{r.file}",
                             root / r["mask"], f"Lower-grade glioma, {int(r.tumour_pixels)} tumour pixels on FLAIR.",
                             group=f"{r.case} slice {int(r.slice)}"))
    # Tumour-free: one patient of another institution, a mid-level slice far from the tumour, all three sequences.
    free = df[(df.label == "notumor") & (df.institution == "FG") & (df.slices_from_tumour >= 5)]
    complete = free.groupby(["case", "slice"]).sequence.transform("nunique") == 3
    free = free[complete]
    # A slice above the tumour at about mid-height of the head (the lateral ventricles), not the skull base.
    top = df.groupby("case").slice.max()
    tumour_top = glioma.groupby("case").slice.max()
    flair = free[(free.sequence == "flair") & (free.slice.values > tumour_top.reindex(free.case).values)].copy()
    flair["height"] = flair.slice.values / top.reindex(flair.case).values
    best = flair.assign(d=(flair.height - 0.55).abs()).sort_values(["d", "case", "slice"]).iloc[0]
    case, mid = best.case, best.slice
    for _, r in free[(free.case == case) & (free.slice == mid)].sort_values("sequence").iterrows():
        out.append(_case("lgg-tcga-slices", r.file, "notumor", r.sequence, f"lgg-tcga-slices/{r.file}",
                         note=f"Tumour-free slice of a glioma patient, {int(r.slices_from_tumour)} slices from the "
                              "tumour.", group=f"{r.case} slice {int(r.slice)}"))
    return out


def pick_brats(root: Path) -> list[dict]:
    df = pd.read_csv(root / "labels.csv")
    out = []
    tumour = df[df.label == "tumor"]
    best = tumour.sort_values(["wt_area_px", "image"], ascending=[False, True]).drop_duplicates("patient")
    for i, (_, b) in enumerate(best.head(3).iterrows()):
        seqs = ("flair", "t1c") if i < 2 else ("flair",)
        for seq in seqs:
            r = tumour[(tumour.patient == b.patient) & (tumour.z == b.z) & (tumour.sequence == seq)].iloc[0]
            out.append(_case("brats2013-slices", r.image, "glioma", seq, f"brats2013-slices/{r.image}",
                             root / r.mask_wt, f"High- or low-grade glioma (BRATS), skull-stripped; whole tumour "
                                               f"{int(r.wt_area_px)} pixels.", group=f"{r.patient} z{int(r.z)}"))
    free = df[(df.label == "notumor") & (df.sequence == "flair") & (df.patient == best.iloc[0].patient)]
    free = free.sort_values("z")
    r = free.iloc[int(np.argmax([_head_area(root / f) for f in free.image]))]
    out.append(_case("brats2013-slices", r.image, "notumor", "flair", f"brats2013-slices/{r.image}",
                     note="Tumour-free slice of a glioma patient (BRATS tumour-free slices lie near the skull base "
                          "or the vertex), skull-stripped.", group=f"{r.patient} z{int(r.z)}"))
    return out


def pick_ixi(root: Path) -> list[dict]:
    df = pd.read_csv(root / "slices.csv").sort_values("subject")
    rows = df.iloc[[0, len(df) // 2, len(df) - 1]]
    return [_case("ixi-t1-midaxial", r.file, "notumor", "t1", f"ixi-t1-midaxial/{r.file}",
                  note="Healthy volunteer (IXI).", group=r.subject) for _, r in rows.iterrows()]


def pick_ms(root: Path) -> list[dict]:
    df = pd.read_csv(root / "slices.csv")
    out = []
    # FLAIR slices at about 60% of each volume's height (the lateral ventricles, where MS lesions cluster):
    # abnormal brains without a tumour, the hard negatives.
    for patient in ("patient01", "patient04", "patient12"):
        vol = df[(df.patient == patient) & (df.study == "study1") & (df.sequence == "flair")].sort_values("slice")
        r = vol.iloc[int(0.6 * (len(vol) - 1))]
        out.append(_case("ms-ljubljana-slices", r.file, "notumor", "flair", f"ms-ljubljana-slices/{r.file}",
                         note="Multiple sclerosis: bright white-matter lesions on FLAIR, no tumour (a hard negative).",
                         group=f"{patient} study1 slice {int(r.slice)}"))
    for seq in ("t1", "t2"):
        vol = df[(df.patient == "patient01") & (df.study == "study1") & (df.sequence == seq)].sort_values("slice")
        r = vol.iloc[int(0.6 * (len(vol) - 1))]
        out.append(_case("ms-ljubljana-slices", r.file, "notumor", seq, f"ms-ljubljana-slices/{r.file}",
                         note="Multiple sclerosis patient, no tumour.", group=f"patient01 study1 slice {int(r.slice)}"))
    return out


def build(data: Path, out: Path = OUT) -> list[dict]:
    picks = (pick_lgg(data / "lgg-tcga-slices") + pick_brats(data / "brats2013-slices")
             + pick_ixi(data / "ixi-t1-midaxial") + pick_ms(data / "ms-ljubljana-slices"))
    for sub in ("images", "masks"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    cases = []
    for i, p in enumerate(picks, 1):
        src = SOURCES[p["source"]]
        cid = f"case{i:02d}"
        img = _gray(data / p["source"] / p["_image"])
        cv2.imwrite(str(out / "images" / f"{cid}.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        mask_name = None
        if p["_mask"] is not None:
            mask = (_gray(p["_mask"]) > 127).astype(np.uint8) * 255
            if mask.shape != img.shape or not mask.any():
                raise SystemExit(f"bad mask for {p['_image']}")
            mask_name = f"masks/{cid}.png"
            cv2.imwrite(str(out / mask_name), mask, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        cases.append({
            "id": cid, "file": f"images/{cid}.png", "mask": mask_name, "truth": p["truth"],
            "tumour": p["truth"] != "notumor", "sequence": p["sequence"], "sequence_name": SEQ_NAMES[p["sequence"]],
            "source": p["source"], "source_name": src["label"], "licence": src["licence"],
            "attribution": src["attribution"], "original_file": p["original_file"], "group": p["group"],
            "note": p["note"], "width": int(img.shape[1]), "height": int(img.shape[0]),
        })
    (out / "cases.json").write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    write_attribution(cases, out)
    return cases


def write_attribution(cases: list[dict], out: Path) -> None:
    """The per-file table at the end of case_library/README.md (between the markers), regenerated."""
    readme = out / "README.md"
    text = readme.read_text() if readme.is_file() else "<!-- cases -->\n<!-- /cases -->\n"
    head, rest = text.split("<!-- cases -->", 1)
    tail = rest.split("<!-- /cases -->", 1)[1]
    rows = ["| Case | Truth | Sequence | Source | Licence | Original file | Outline |", "|---|---|---|---|---|---|---|"]
    for c in cases:
        rows.append(f"| `{c['file']}` | {c['truth']} | {c['sequence_name']} | {c['source_name']} | {c['licence']} | "
                    f"`{c['original_file']}` | {'`' + c['mask'] + '`' if c['mask'] else 'none'} |")
    readme.write_text(head + "<!-- cases -->\n" + "\n".join(rows) + "\n<!-- /cases -->" + tail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="the shared data folder (holding lgg-tcga-slices/, brats2013-slices/, ...)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    cases = build(Path(args.data), Path(args.out))
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*.png"))
    print(f"{len(cases)} cases, {size / 1e6:.2f} MB of PNG in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
