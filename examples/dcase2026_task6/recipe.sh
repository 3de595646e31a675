#!/usr/bin/env bash
# DCASE 2026 Task 6 (audio moment retrieval on CASTELLA): the published baseline with this
# project's commands. Pre-train QD-DETR on Clotho-Moment with Lighthouse's settings, fine-tune on
# CASTELLA from its best.ckpt, predict and score CASTELLA test, write the submission file.
#
# Run from the repository root; see README.md beside this file for the data and features.
# Every step is skipped when its output exists, so running the script again resumes it.
set -euo pipefail

DATA=${DATA:-data}                    # data/{clotho_moment,castella}/*_release.jsonl
FEATURES_ROOT=${FEATURES_ROOT:-features}  # features/{clotho-moment,castella}/{clap,clap_text}/
SEED=${SEED:-2023}                    # Lighthouse's seed; the baseline reports 5 runs
RESULTS=${RESULTS:-results/dcase2026_task6/seed$SEED}
DEVICE=${DEVICE:-auto}                # cpu, cuda, cuda:N or auto
EVAL_JSONL=${EVAL_JSONL:-}            # the challenge's evaluation queries (no windows), if any

CLOTHO=$DATA/clotho_moment/clotho_moment
CASTELLA=$DATA/castella/castella
PRETRAIN=$RESULTS/pretrain/qd_detr/clotho-moment/clap    # where lighthouse train puts each run
FINETUNE=$RESULTS/finetune/qd_detr/castella/clap
TEST_PREDS=$RESULTS/castella_test_preds.jsonl
TEST_METRICS=$RESULTS/castella_test_preds.metrics.json  # infer --eval writes it last
SUBMISSION=$RESULTS/castella_test_submission.jsonl

# train RUN_DIR ARGS...: skip a finished run (the recipe marks it), resume an interrupted one
# from its last.ckpt, else start it; a run without a best.ckpt stops the recipe.
train() {
  local run_dir=$1
  shift
  if [ -f "$run_dir/recipe.done" ]; then
    echo "recipe: $run_dir is finished, skipped"
  elif [ -f "$run_dir/last.ckpt" ]; then
    lighthouse train --resume "$run_dir/last.ckpt" --device "$DEVICE"
  elif [ -n "$(ls -A "$run_dir" 2>/dev/null | grep -vx config.yaml)" ]; then
    # lighthouse train never overwrites a run: it would start in a new folder beside this one
    echo "recipe: $run_dir holds a run stopped before its first last.ckpt; remove it" >&2
    exit 1
  else
    lighthouse train "$@"
  fi
  if [ ! -f "$run_dir/best.ckpt" ]; then
    echo "recipe: no $run_dir/best.ckpt (see the run's val.log); remove $run_dir to retry" >&2
    exit 1
  fi
  touch "$run_dir/recipe.done"
}

# 1. Pre-train on Clotho-Moment: Lighthouse's settings (configs/, best.ckpt by MR-full-mAP).
train "$PRETRAIN" \
  --domain audio --model qd_detr --dataset clotho-moment --feature clap \
  --features-root "$FEATURES_ROOT" --device "$DEVICE" \
  train_path="${CLOTHO}_train_release.jsonl" eval_path="${CLOTHO}_val_release.jsonl" \
  results_dir="$RESULTS/pretrain" seed="$SEED"

# 2. Fine-tune on CASTELLA from the pre-trained weights: the baseline's settings, best.ckpt
#    picked by validation R1@0.7.
train "$FINETUNE" \
  --domain audio --model qd_detr --dataset castella --feature clap \
  --features-root "$FEATURES_ROOT" --device "$DEVICE" --init-from "$PRETRAIN/best.ckpt" \
  train_path="${CASTELLA}_train_release.jsonl" eval_path="${CASTELLA}_val_release.jsonl" \
  results_dir="$RESULTS/finetune" seed="$SEED" \
  n_epoch=200 max_a_l=300 max_v_l=300 max_windows=5 selection_metric=MR-full-R1@0.7

# 3. Predict CASTELLA test and score it (R1@0.5, R1@0.7, mAP: compare with README.md).
if [ -f "$TEST_METRICS" ]; then
  echo "recipe: $TEST_METRICS exists, skipped"
else
  lighthouse infer --checkpoint "$FINETUNE/best.ckpt" --jsonl "${CASTELLA}_test_release.jsonl" \
    --features "$FEATURES_ROOT/castella" --out "$TEST_PREDS" --eval --device "$DEVICE"
fi

# 4. The submission file of CASTELLA test (the challenge's format).
if [ -f "$SUBMISSION" ]; then
  echo "recipe: $SUBMISSION exists, skipped"
else
  lighthouse submission --predictions "$TEST_PREDS" --jsonl "${CASTELLA}_test_release.jsonl" \
    --out "$SUBMISSION"
fi

# 5. With EVAL_JSONL (queries without windows, features under $FEATURES_ROOT/castella): the
#    challenge's evaluation set, predicted and written in one step.
if [ -n "$EVAL_JSONL" ]; then
  EVAL_SUBMISSION=$RESULTS/$(basename "$EVAL_JSONL" .jsonl)_submission.jsonl
  if [ -f "$EVAL_SUBMISSION" ]; then
    echo "recipe: $EVAL_SUBMISSION exists, skipped"
  else
    lighthouse submission --checkpoint "$FINETUNE/best.ckpt" --jsonl "$EVAL_JSONL" \
      --features "$FEATURES_ROOT/castella" --out "$EVAL_SUBMISSION" --device "$DEVICE"
  fi
fi
echo "recipe: submission $SUBMISSION"
