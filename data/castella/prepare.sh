#!/usr/bin/env bash
# castella: fetch/check the annotation files here, and see where features and audio go.
# Usage: data/castella/prepare.sh [--from DIR] [--download]   (see data/prepare.sh)
exec "$(dirname "${BASH_SOURCE[0]}")/../prepare.sh" castella "$@"
