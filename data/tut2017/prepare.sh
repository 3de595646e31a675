#!/usr/bin/env bash
# tut2017: fetch/check the annotation files here, and see where features and audio go.
# Usage: data/tut2017/prepare.sh [--from DIR] [--download]   (see data/prepare.sh)
exec "$(dirname "${BASH_SOURCE[0]}")/../prepare.sh" tut2017 "$@"
