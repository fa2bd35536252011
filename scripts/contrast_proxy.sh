#!/usr/bin/env bash
# The contrast-robustness proxy of issue #21. Meningioma and pituitary are known here only on contrast T1;
# how much does a model that knows a tumour on one sequence lose on the others, and what closes the gap?
# Glioma vs no tumour from lgg-tcga-slices alone (recipes/proxy-lgg.toml), three runs with one seed:
#   all  every sequence (the reference)
#   t1c  contrast T1 only, the shipped model's augmentation
#   t1c-contrast  contrast T1 only, plus the non-monotone intensity remap (--contrast 0.5)
# each scored on FLAIR, T1 and T1c of patients never trained on (the test part and institution HT).
# Usage: bash scripts/contrast_proxy.sh [OUT] [DATA_ROOT]   (about 8 minutes a run on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/contrast-proxy}"
DATA="${2:-../shared/data}"
COMMON=(--recipe recipes/proxy-lgg.toml --data "$DATA" --arch efficientnet_lite0 --weights imagenet --img-size 128
        --epochs 8 --steps-per-epoch 60 --batch-size 32 --lr 1e-3 --patience 8 --stripped 0.3 --vflip 0.5
        --guide-cams 1.0 --holdout-institution HT --seed "${SEED:-0}")
for variant in ${VARIANTS:-all t1c t1c-contrast}; do
  case "$variant" in
    all) extra=() ;;
    t1c) extra=(--train-sequences t1c) ;;
    t1c-contrast) extra=(--train-sequences t1c --contrast 0.5) ;;
    *) echo "unknown variant $variant" >&2; exit 2 ;;
  esac
  [ -f "$OUT/$variant/card.json" ] || python -m brainscan train "${COMMON[@]}" "${extra[@]}" --out "$OUT/$variant" \
    --name "contrast proxy: $variant"
done
python -m brainscan.evaluation.proxy "$OUT"
