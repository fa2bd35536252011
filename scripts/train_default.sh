#!/usr/bin/env bash
# Reproduce the shipped model (models/default): EfficientNet-Lite0 from the offline ImageNet weights, fine-tuned on
# every training source of recipes/v3.toml (brain-tumor-mri, lgg-tcga-slices without institution HT,
# ms-ljubljana-slices, ixi-t1-midaxial), then evaluated on the external sets and promoted.
# Usage: bash scripts/train_default.sh [DATA_ROOT]   (default ../shared/data); about 100 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data}"
RUN="${RUN:-runs/v3-default}"
python -m brainscan train --recipe recipes/v3.toml --data "$DATA" --out "$RUN" --name "BrainScan v3.1 (EfficientNet-Lite0)" \
  --arch efficientnet_lite0 --weights imagenet --img-size 128 --epochs 28 --steps-per-epoch 150 --batch-size 32 \
  --lr 1e-3 --patience 6 --stripped 0.3 --vflip 0.5 --guide-cams 1.0 --holdout-institution HT --seed 0
