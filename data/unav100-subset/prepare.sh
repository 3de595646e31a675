#!/usr/bin/env bash
# unav100-subset: fetch/check the annotation files here, and see where features and audio go.
# Usage: data/unav100-subset/prepare.sh [--from DIR] [--download]   (see data/prepare.sh)
exec "$(dirname "${BASH_SOURCE[0]}")/../prepare.sh" unav100-subset "$@"
