#!/usr/bin/env bash
# Shared body of the per-dataset recipes: every split's audio + queries -> features/<dataset>/.
# The released AMR features (Zenodo 13806234) are MS-CLAP 2023, 1 s windows, 1 s hop, with half a
# window of zero padding on each side (frames=center: N+1 frames for N seconds).
# FEATURE, FRAMES and OPTIONS (extra arguments, e.g. "--device cuda") override the defaults.
set -euo pipefail
dataset=$1; audio_root=$2; shift 2
feature=${FEATURE:-clap}
frames=${FRAMES:-center}
out=${FEATURES_ROOT:-features}/$dataset
for jsonl in "$@"; do
  [ -f "$jsonl" ] || { echo "missing annotation file: $jsonl (see data/README.md)" >&2; exit 2; }
  lighthouse extract --feature "$feature" --audio-dir "$audio_root" --jsonl "$jsonl" --out "$out" \
    --window 1 --hop 1 --frames "$frames" ${WEIGHTS:+--weights "$WEIGHTS"} ${OPTIONS:-}
done
