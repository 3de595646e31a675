#!/usr/bin/env bash
# clotho_moment: fetch/check the annotation files here, and see where features and audio go.
# Usage: data/clotho_moment/prepare.sh [--from DIR] [--download]   (see data/prepare.sh)
exec "$(dirname "${BASH_SOURCE[0]}")/../prepare.sh" clotho_moment "$@"
