#!/usr/bin/env bash
# CASTELLA: long real recordings (up to 300 s), named by their vid.
exec "$(dirname "$0")/_extract_release.sh" castella "${1:?audio folder}" \
  data/castella/castella_train_release.jsonl \
  data/castella/castella_val_release.jsonl \
  data/castella/castella_test_release.jsonl
