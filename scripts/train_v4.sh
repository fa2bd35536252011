#!/usr/bin/env bash
# The model v4 candidate (README, "Model v4"; measured, not shipped: v3.1 won the in-distribution and unseen-site
# rows, scripts/train_default.sh): EfficientNet-Lite0 started from the weights of
# v3.1 (the model before it; taken from git history, commit 6376871, unless INIT names another model folder)
# and fine-tuned on every training source of recipes/v4.toml (brain-tumor-mri with its BRISC tumour outlines,
# lgg-tcga-slices without institution HT, ms-ljubljana-slices, ixi-t1-midaxial) with mask-guided CAMs for all
# three tumour types and the non-monotone intensity remap. Then measure it beside the shipped model:
#   PREVIOUS=models/default bash scripts/evaluate_default.sh runs/v4-default
# Usage: bash scripts/train_v4.sh [DATA_ROOT]   (default ../shared/data); about 30 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data}"
RUN="${RUN:-runs/v4-default}"
INIT="${INIT-runs/v3.1-start}"
if [ "$INIT" = runs/v3.1-start ] && [ ! -f "$INIT/model.keras" ]; then
  mkdir -p "$INIT"
  for f in model.keras card.json; do git show "6376871:models/default/$f" > "$INIT/$f"; done
fi
python -m brainscan train --recipe recipes/v4.toml --data "$DATA" --out "$RUN" --name "BrainScan v4 (EfficientNet-Lite0)" \
  --arch efficientnet_lite0 --weights none ${INIT:+--init-from "$INIT"} --img-size 128 --epochs 8 \
  --steps-per-epoch 150 --batch-size 32 --lr 1e-4 --patience 8 --stripped 0.3 --vflip 0.5 --contrast 0.5 \
  --guide-cams 1.0 --holdout-institution HT --seed 0
