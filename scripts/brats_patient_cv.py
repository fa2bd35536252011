"""Does a little data from another source fix what augmentation could not? A patient-grouped experiment.

For each fold, the BRATS slices of all but two patients (tumor slices as glioma, tumor-free slices as
notumor, both sequences) join the training part through `train --extra-train`; the two held-out
patients are then evaluated per sequence with `external --brats-patients`. Nothing of a held-out
patient is ever trained on. Prints one line per fold and the mean, and writes OUT/summary.json.

    python scripts/brats_patient_cv.py --data ../shared/data --out runs/brats-cv -- --img-size 64 --epochs 12

Arguments after `--` go to `python -m brainscan train` unchanged. The BRATS figures of such a model
are not external any more in the sense of the model card: they measure held-out patients of a
source the model has seen, so they are reported here and never written into models/.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FOLDS = 3


def copy_patients(brats: Path, patients: set[str], dest: Path) -> int:
    """Class folders (glioma/ for tumor slices, notumor/ for tumor-free ones) in a temporary folder outside
    the repository; copies, because dataset discovery skips symlinks."""
    with open(brats / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["patient"] in patients]
    for r in rows:
        folder = dest / ("glioma" if r["label"] == "tumor" else "notumor")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(brats / r["image"], folder / Path(r["image"]).name)
    return len(rows)


def brainscan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "brainscan", *args], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data", help="folder holding brain-tumor-mri/ and brats2013-slices/")
    ap.add_argument("--out", default="runs/brats-cv")
    ap.add_argument("train_args", nargs="*", help="after --: extra arguments for brainscan train")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    brats = data / "brats2013-slices"
    with open(brats / "labels.csv", newline="") as f:
        patients = sorted({r["patient"] for r in csv.DictReader(f)})
    folds = [patients[k::FOLDS] for k in range(FOLDS)]
    results = []
    for k, held_out in enumerate(folds):
        run = out / f"fold{k}"
        with tempfile.TemporaryDirectory() as tmp:
            n = copy_patients(brats, set(patients) - set(held_out), Path(tmp))
            print(f"fold {k}: training with {n} BRATS slices of {len(patients) - len(held_out)} patients, "
                  f"holding out {', '.join(held_out)}", flush=True)
            brainscan("train", "--data", str(data / "brain-tumor-mri"), "--out", str(run),
                      "--extra-train", tmp, *args.train_args)
        brainscan("external", "--model", str(run), "--brats", str(brats), "--brats-patients", ",".join(held_out))
        card = json.loads((run / "card.json").read_text())
        seqs = json.loads((run / "external.json").read_text())["brats"]["sequences"]
        results.append({"fold": k, "held_out": held_out,
                        "test_dedup_accuracy": card["scores"]["test_dedup"]["accuracy"],
                        **{f"{s}_auc": seqs[s]["roc_auc"] for s in seqs},
                        **{f"{s}_pointing": seqs[s]["pointing_game"]["hit_rate"] for s in seqs}})
        print(json.dumps(results[-1]), flush=True)
    keys = [k for k in results[0] if k not in ("fold", "held_out")]
    mean = {k: sum(r[k] for r in results) / len(results) for k in keys}
    print("mean over folds:", json.dumps({k: round(v, 3) for k, v in mean.items()}))
    (out / "summary.json").write_text(json.dumps({"folds": results, "mean": mean,
                                                   "train_args": args.train_args}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
