#!/usr/bin/env bash
# TUT Sound Events 2017 (evaluation only): 60 s segments named by their vid (e.g. a002_60_120).
exec "$(dirname "$0")/_extract_release.sh" tut2017 "${1:?audio folder}" \
  data/tut2017/tut2017_test_release.jsonl
