#!/usr/bin/env bash
# Clotho-Moment with M2D-CLAP 2025 features (see castella_m2d_clap.sh): AUDIO_ROOT holds the
# wav files of Zenodo record 13836117 (any sub-folders); writes features/clotho-moment/m2d-clap/
# and m2d-clap_text/, next to the released clap/ features.
# Usage: feature_extractors/clotho_moment_m2d_clap.sh AUDIO_ROOT   (OPTIONS="--device cuda")
FEATURE=m2d-clap FRAMES=none exec "$(dirname "$0")/_extract_release.sh" clotho-moment \
  "${1:?audio folder}" \
  data/clotho_moment/clotho_moment_train_release.jsonl \
  data/clotho_moment/clotho_moment_val_release.jsonl \
  data/clotho_moment/clotho_moment_test_release.jsonl
