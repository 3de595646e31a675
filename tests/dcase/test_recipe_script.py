"""``examples/dcase2026_task6/recipe.sh``: valid bash, every step's command, and the skip/resume
logic, run against a stand-in ``lighthouse`` that only records its arguments and makes the files
each step would write."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

RECIPE = REPO_ROOT / "examples" / "dcase2026_task6" / "recipe.sh"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")

# The stand-in: appends its arguments to $STUB_LOG, then creates what the real command writes.
STUB = r"""#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
command=$1; shift
case $command in
  train)
    dataset=; resume=; results=
    while [ $# -gt 0 ]; do
      case $1 in
        --dataset) dataset=$2; shift ;;
        --resume) resume=$2; shift ;;
        results_dir=*) results=${1#results_dir=} ;;
      esac
      shift
    done
    if [ -n "$resume" ]; then run=$(dirname "$resume"); else run=$results/qd_detr/$dataset/clap; fi
    mkdir -p "$run" && touch "$run/last.ckpt" "$run/best.ckpt" ;;
  infer|submission)
    while [ "$1" != --out ]; do shift; done
    mkdir -p "$(dirname "$2")" && touch "$2"
    [ "$command" = infer ] && touch "${2%.jsonl}.metrics.json" ;;
esac
exit 0
"""


def test_the_recipe_is_valid_bash():
    subprocess.run([BASH, "-n", str(RECIPE)], check=True)


def test_the_recipe_names_each_step():
    text = RECIPE.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    for step in [
        "lighthouse train",
        "--dataset clotho-moment --feature clap",
        "--dataset castella --feature clap",
        '--init-from "$PRETRAIN/best.ckpt"',
        "n_epoch=200 max_a_l=300 max_v_l=300 max_windows=5 selection_metric=MR-full-R1@0.7",
        "lighthouse infer",
        "--eval",
        "lighthouse submission --predictions",
        "lighthouse submission --checkpoint",
    ]:
        assert step in text, step


@pytest.fixture
def recipe_env(tmp_path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "lighthouse"
    stub.write_text(STUB)
    stub.chmod(0o755)
    return os.environ | {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STUB_LOG": str(tmp_path / "calls.log"),
        "RESULTS": str(tmp_path / "results"),
        "DATA": "DATA",
        "FEATURES_ROOT": "FEATS",
        "DEVICE": "cpu",
    }


def run_recipe(env: dict[str, str], tmp_path: Path) -> list[str]:
    log = Path(env["STUB_LOG"])
    log.unlink(missing_ok=True)
    subprocess.run([BASH, str(RECIPE)], env=env, cwd=tmp_path, check=True, capture_output=True)
    return log.read_text().splitlines() if log.exists() else []


def test_the_steps_run_in_order_then_are_skipped(recipe_env, tmp_path):
    results = tmp_path / "results"
    calls = run_recipe(recipe_env, tmp_path)
    assert [call.split()[0] for call in calls] == ["train", "train", "infer", "submission"]
    pretrain, finetune, infer, submit = calls
    assert "--dataset clotho-moment" in pretrain
    assert "train_path=DATA/clotho_moment/clotho_moment_train_release.jsonl" in pretrain
    assert "selection_metric" not in pretrain  # Lighthouse's settings: best by MR-full-mAP
    assert "--dataset castella" in finetune
    assert f"--init-from {results}/pretrain/qd_detr/clotho-moment/clap/best.ckpt" in finetune
    assert "eval_path=DATA/castella/castella_val_release.jsonl" in finetune
    assert finetune.endswith(
        "n_epoch=200 max_a_l=300 max_v_l=300 max_windows=5 selection_metric=MR-full-R1@0.7"
    )
    assert f"--checkpoint {results}/finetune/qd_detr/castella/clap/best.ckpt" in infer
    assert "--jsonl DATA/castella/castella_test_release.jsonl --features FEATS/castella" in infer
    assert f"--predictions {results}/castella_test_preds.jsonl" in submit
    assert f"--out {results}/castella_test_submission.jsonl" in submit

    assert run_recipe(recipe_env, tmp_path) == []  # everything there: nothing runs again


def test_an_interrupted_run_resumes_and_a_missing_output_is_redone(recipe_env, tmp_path):
    run_recipe(recipe_env, tmp_path)
    finetune = tmp_path / "results" / "finetune" / "qd_detr" / "castella" / "clap"
    (finetune / "recipe.done").unlink()  # as if killed after an epoch: last.ckpt, no mark
    (tmp_path / "results" / "castella_test_submission.jsonl").unlink()
    calls = run_recipe(recipe_env, tmp_path)
    assert calls == [
        f"train --resume {finetune}/last.ckpt --device cpu",
        "submission --predictions {0}/castella_test_preds.jsonl --jsonl "
        "DATA/castella/castella_test_release.jsonl --out {0}/castella_test_submission.jsonl".format(
            tmp_path / "results"
        ),
    ]


def test_the_evaluation_queries_get_their_own_submission(recipe_env, tmp_path):
    run_recipe(recipe_env, tmp_path)
    calls = run_recipe(recipe_env | {"EVAL_JSONL": "eval/castella_eval.jsonl"}, tmp_path)
    assert len(calls) == 1
    assert calls[0].startswith("submission --checkpoint ")
    assert "--jsonl eval/castella_eval.jsonl --features FEATS/castella" in calls[0]
    assert f"--out {tmp_path / 'results'}/castella_eval_submission.jsonl" in calls[0]


def test_a_run_stopped_before_its_first_checkpoint_stops_the_recipe(recipe_env, tmp_path):
    pretrain = tmp_path / "results" / "pretrain" / "qd_detr" / "clotho-moment" / "clap"
    pretrain.mkdir(parents=True)
    (pretrain / "train.log").write_text("epoch 0\n")
    done = subprocess.run([BASH, str(RECIPE)], env=recipe_env, cwd=tmp_path, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 1
    assert "stopped before its first last.ckpt; remove it" in done.stderr
    assert not Path(recipe_env["STUB_LOG"]).exists()
