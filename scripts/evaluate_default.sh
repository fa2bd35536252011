#!/usr/bin/env bash
# Every model-dependent figure the README and the model card report, for one model folder: the external sets
# (BRATS per sequence as stored and turned upside down, with the pointing game; navoneel-yes-no without its
# near-duplicates of any training source; the lgg-tcga pointing game on held-out patients and institution),
# the uncertainty threshold and coverage curves, and the heatmap sanity check. About 10 minutes on 2 cores.
# Usage: bash scripts/evaluate_default.sh [MODEL_DIR] [DATA_ROOT]   (defaults: models/default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-models/default}"
DATA="${2:-../shared/data}"
python -m brainscan external --model "$MODEL" --brats "$DATA/brats2013-slices" --yes-no "$DATA/navoneel-yes-no" \
  --recipe recipes/v3.toml --data-root "$DATA"
python -m brainscan uncertainty "$MODEL" --data "$DATA" --brats "$DATA/brats2013-slices" \
  --yes-no "$DATA/navoneel-yes-no" --recipe recipes/v3.toml --data-root "$DATA"
python -m brainscan sanity "$MODEL"
