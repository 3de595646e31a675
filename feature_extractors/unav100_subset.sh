#!/usr/bin/env bash
# UnAV-100 subset (evaluation only): AUDIO_ROOT holds the recordings named by their vid.
exec "$(dirname "$0")/_extract_release.sh" unav100-subset "${1:?audio folder}" \
  data/unav100-subset/unav100-subset_test_release.jsonl
