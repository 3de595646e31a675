#!/usr/bin/env bash
# CASTELLA with M2D-CLAP 2025 features, as the public M2D-CLAP AMR systems compute them: one
# 768-d joint-space vector per whole second (non-overlapping 1 s windows at 16 kHz, the partial
# last second dropped: frames=none) and BERT token states of each query (<= 32 tokens).
# Weights: WEIGHTS=.../m2d_clap_vit_base-80x1001p16x16p16kpBpTI-2025/checkpoint-30.pth, else
# $LIGHTHOUSE_AUDIO_M2D_CLAP_WEIGHTS, the cache, or the release zip downloaded on first use.
# Usage: feature_extractors/castella_m2d_clap.sh AUDIO_ROOT   (OPTIONS="--device cuda" on a GPU)
FEATURE=m2d-clap FRAMES=none exec "$(dirname "$0")/_extract_release.sh" castella \
  "${1:?audio folder}" \
  data/castella/castella_train_release.jsonl \
  data/castella/castella_val_release.jsonl \
  data/castella/castella_test_release.jsonl
