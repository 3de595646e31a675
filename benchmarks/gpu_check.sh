#!/usr/bin/env bash
# The fast training path on a GPU in one command: install, correctness against the CPU path,
# timing. Under 8 minutes on one H100/H200; results go to OUT_DIR (default $OUT or gpu_check/).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# Run from the repository root on a machine whose python3 has a CUDA build of torch. The project
# runs from this tree (PYTHONPATH); of its dependencies only easydict is usually missing from a
# CUDA image: it is installed from PyPI, or, without network, from a wheel in .whl/
# (pip download --no-deps -d .whl easydict==1.13).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

# 1. install
if ! python3 -c "import easydict" 2>/dev/null; then
    site=/tmp/lighthouse_site
    python3 -m pip install -q --no-deps --target "$site" --no-index .whl/easydict-*.whl 2>/dev/null \
        || python3 -m pip install -q --no-deps --target "$site" easydict
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.cuda.get_device_name())" | tee "$out/device.txt"

# 2. correctness: the unit tests (CUDA variants included), then the fast path on the GPU against
# the plain path on the CPU, batch by batch (inputs, matched cost, every loss term)
timeout 180 python3 -m pytest -q -p no:cacheprovider -m "not slow" \
    tests/models/test_assignment.py tests/data/test_device_split.py \
    tests/engine/test_fast_path.py -k "not learns" 2>&1 | tee "$out/tests.txt"
timeout 120 python3 benchmarks/gpu_equivalence.py --device cuda --json "$out/equivalence.json"

# 3. timing, full-size Clotho-Moment-shaped data: the fast variants, then the plain path on a
# eighth of the queries (its epoch is scaled to the full size)
timeout 240 python3 benchmarks/train_epoch.py --device cuda --epochs 2 eval_bsz=1024 \
    --variants fast fast-static fast-compile fast-bf16 --json "$out/train_epoch_fast.json"
timeout 120 python3 benchmarks/train_epoch.py --device cuda --num-train 4096 --num-val 1024 \
    --epochs 1 --variants plain --json "$out/train_epoch_plain.json"
echo "gpu_check: done, results in $out"
