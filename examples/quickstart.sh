#!/usr/bin/env bash
# Offline quickstart: toy features -> train AM-DETR -> predict + evaluate with the best checkpoint.
set -euo pipefail
WORK=${1:-quickstart}
python -m lighthouse_audio.testing.synthetic "$WORK/features"
lighthouse train --domain audio --model qd_detr --dataset custom --feature clap \
  --features-root "$WORK/features" --device cpu \
  train_path="$WORK/features/custom/train.jsonl" eval_path="$WORK/features/custom/val.jsonl" \
  results_dir="$WORK/results" n_epoch=10 lr=0.0005 max_v_l=30 max_a_l=30 input_dropout=0.1
RUN=$(ls -d "$WORK"/results/qd_detr/custom/clap* | tail -n 1)
lighthouse infer --checkpoint "$RUN/best.ckpt" --jsonl "$WORK/features/custom/val.jsonl" \
  --features "$WORK/features/custom" --out "$WORK/val_preds.jsonl" --eval
