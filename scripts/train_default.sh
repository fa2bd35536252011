#!/usr/bin/env bash
# Reproduce the shipped model: train on brain-tumor-mri, evaluate on the external sets, promote to models/default.
# Usage: bash scripts/train_default.sh [DATA_ROOT]   (DATA_ROOT defaults to ../shared/data)
set -euo pipefail
DATA="${1:-../shared/data}"
RUN="runs/default-$(date +%Y%m%d-%H%M%S)"
python -m brainscan train --data "$DATA/brain-tumor-mri" --out "$RUN" --arch compact --img-size 128 \
  --epochs 60 --patience 12 --batch-size 32 --lr 2e-3 --seed 0 --name compact-cnn-128
python -m brainscan external --model "$RUN" --brats "$DATA/brats2013-slices" \
  --yes-no "$DATA/navoneel-yes-no" --dedup-against "$DATA/brain-tumor-mri/Training"
python -m brainscan promote "$RUN" models/default
