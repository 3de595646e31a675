#!/usr/bin/env bash
# Clotho-Moment: AUDIO_ROOT holds the wav files of Zenodo record 13836117 (any sub-folders).
# Usage: WEIGHTS=CLAP_weights_2023.pth feature_extractors/clotho_moment.sh AUDIO_ROOT
exec "$(dirname "$0")/_extract_release.sh" clotho-moment "${1:?audio folder}" \
  data/clotho_moment/clotho_moment_train_release.jsonl \
  data/clotho_moment/clotho_moment_val_release.jsonl \
  data/clotho_moment/clotho_moment_test_release.jsonl
