"""The contrast-robustness proxy's table (scripts/contrast_proxy.sh): a glioma model trained on every sequence
beside ones trained on contrast T1 only, each scored per sequence on patients never trained on.

``python -m brainscan.evaluation.proxy RUNS_FOLDER`` reads each run's metrics.json (brainscan.training.run) and
writes RUNS_FOLDER/proxy.json: per run, part and sequence the tumour ROC AUC, and its gap to the run named
``all`` (the reference). No TensorFlow here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PARTS = ("test", "institution_holdout")
REFERENCE = "all"


def proxy_table(runs: Path) -> dict:
    """{run: {part: {sequence: AUC}}} for every finished run under `runs`, and the gaps to the reference."""
    table: dict = {}
    for run in sorted(p for p in runs.iterdir() if (p / "metrics.json").is_file()):
        metrics = json.loads((run / "metrics.json").read_text())
        table[run.name] = {part: {key.partition("/")[2]: cell.get("tumor_roc_auc")
                                  for key, cell in metrics.get(part, {}).get("by_source", {}).items()}
                           for part in PARTS if part in metrics}
    ref = table.get(REFERENCE, {})
    gaps = {name: {part: {seq: (None if auc is None or ref.get(part, {}).get(seq) is None
                                else ref[part][seq] - auc) for seq, auc in seqs.items()}
                   for part, seqs in parts.items()}
            for name, parts in table.items() if name != REFERENCE}
    return {"auc": table, "gap_to_all_sequences": gaps}


def lines(result: dict) -> list[str]:
    out = ["run | part | " + " | ".join(("flair", "t1", "t1c", "all"))]
    for name, parts in result["auc"].items():
        for part, seqs in parts.items():
            out.append(f"{name} | {part} | " + " | ".join(
                "n/a" if seqs.get(s) is None else f"{seqs[s]:.3f}" for s in ("flair", "t1", "t1c", "all")))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m brainscan.evaluation.proxy RUNS_FOLDER", file=sys.stderr)
        return 2
    runs = Path(argv[0])
    result = proxy_table(runs)
    (runs / "proxy.json").write_text(json.dumps(result, indent=1))
    print("\n".join(lines(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
