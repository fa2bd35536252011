#!/usr/bin/env bash
# Every model-dependent figure the README and the model card report, for one model folder: the external sets
# (BRATS per sequence as stored and turned upside down, with the pointing game; navoneel-yes-no without its
# near-duplicates of any training source; the lgg-tcga pointing game on held-out patients and institution; the
# brain-tumor-mri pointing game per tumour class), the uncertainty threshold and coverage curves, the heatmap
# sanity check and the volume rule (volume.json). With PREVIOUS set to another model folder, also the stored
# comparison with it (comparison.json, shown on the Model page). About 20 minutes on 2 cores.
# Usage: [PREVIOUS=DIR] bash scripts/evaluate_default.sh [MODEL_DIR] [DATA_ROOT]
#        (defaults: models/default ../shared/data; RECIPE=recipes/v4.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-models/default}"
DATA="${2:-../shared/data}"
RECIPE="${RECIPE:-recipes/v4.toml}"
python -m brainscan external --model "$MODEL" --brats "$DATA/brats2013-slices" --yes-no "$DATA/navoneel-yes-no" \
  --recipe "$RECIPE" --data-root "$DATA"
python -m brainscan uncertainty "$MODEL" --data "$DATA" --brats "$DATA/brats2013-slices" \
  --yes-no "$DATA/navoneel-yes-no" --recipe "$RECIPE" --data-root "$DATA"
python -m brainscan sanity "$MODEL"
python -m brainscan volumes-eval "$MODEL" --data "$DATA"
if [ -n "${PREVIOUS:-}" ]; then
  python -m brainscan compare "$PREVIOUS" "$MODEL" --recipe "$RECIPE" --data-root "$DATA" --bench
fi
