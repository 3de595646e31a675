"""The DCASE 2026 Task 6 recipe's steps end to end through ``lighthouse`` commands, on real
CASTELLA annotation lines (``../shared/data/annotations``) with synthetic features.

As ``examples/dcase2026_task6/recipe.sh``: a short "pre-training" run on Clotho-Moment-shaped
synthetic data, fine-tuning on CASTELLA from its best.ckpt with the baseline's settings
(max_a_l=max_v_l=300, max_windows=5, selection_metric=MR-full-R1@0.7), ``infer --eval`` on test
and ``submission``. Small on purpose: 12 train, 6 val and 6 test queries of the real files, 32-d
features (one frame per second plus one, as the released centre-padded features have), a
one-layer model, a few epochs.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lighthouse_audio.cli.main import main
from lighthouse_audio.data.layout import AUDIO_KEY, TEXT_KEY, FeatureLayout
from lighthouse_audio.engine.checkpoint import load_checkpoint
from lighthouse_audio.prediction.submission import SUBMISSION_KEYS
from lighthouse_audio.testing.synthetic import SyntheticSpec, write_split
from tests.conftest import SHARED

ANNOTATIONS = SHARED / "data" / "annotations"
pytestmark = pytest.mark.skipif(
    not (ANNOTATIONS / "castella_test_release.jsonl").is_file(),
    reason=f"needs the CASTELLA annotation files in {ANNOTATIONS}",
)

DIM = 32
SMALL_MODEL = [f"a_feat_dim={DIM}", f"t_feat_dim={DIM}", "dim_feedforward=64", "enc_layers=1",
               "dec_layers=1"]  # fmt: skip
MAX_END = 300


def read_split(split: str) -> list[dict]:
    path = ANNOTATIONS / f"castella_{split}_release.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def covers_its_recording(line: dict) -> bool:
    """One window over at least 90% of the recording: a target a few epochs can reach at IoU 0.7,
    so validation R1@0.7 (which picks best.ckpt) is not 0 in every epoch."""
    windows = line["relevant_windows"]
    return len(windows) == 1 and windows[0][1] - windows[0][0] >= 0.9 * line["duration"]


def castella_subsets() -> dict[str, list[dict]]:
    train, val, test = read_split("train"), read_split("val"), read_split("test")
    first_300s = next(i for i, line in enumerate(test) if line["duration"] == 300)
    return {
        "train": [line for line in train if covers_its_recording(line)][:9] + train[:3],
        "val": [line for line in val if covers_its_recording(line)][:6],
        # a 300 s recording has 301 frames, more than max_a_l: predicted in chunks
        "test": test[:5] + [test[first_300s]],
    }


def write_castella_features(root: Path, lines: list[dict], rng: np.random.Generator) -> None:
    """Noise, plus one "event" vector inside the annotated windows; every query's text is that
    vector plus noise."""
    layout = FeatureLayout(root, "clap")
    layout.audio_dir.mkdir(parents=True, exist_ok=True)
    layout.text_dir.mkdir(parents=True, exist_ok=True)
    event = np.random.default_rng(7).standard_normal(DIM).astype(np.float32)
    for line in lines:
        frames = int(line["duration"]) + 1
        audio = rng.standard_normal((frames, DIM)).astype(np.float32)
        for start, end in line["relevant_windows"]:
            audio[int(start) : min(int(end), frames)] += event
        text = event + 0.5 * rng.standard_normal((8, DIM)).astype(np.float32)
        np.savez(layout.audio_path(line["vid"]), **{AUDIO_KEY: audio})
        np.savez(layout.text_path(line["qid"]), **{TEXT_KEY: text})


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("dcase2026_task6")
    features = root / "features"
    subsets = castella_subsets()
    rng = np.random.default_rng(0)
    for split, lines in subsets.items():
        write_castella_features(features / "castella", lines, rng)
        (root / f"castella_{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    clotho = features / "clotho-moment"
    toy = dict(duration=20, num_classes=2, min_window=3, max_window=8, min_tokens=4, max_tokens=8,
               audio_dim=DIM, text_dim=DIM)  # fmt: skip
    write_split(clotho, "train", SyntheticSpec(16, **toy), seed=1)
    write_split(clotho, "val", SyntheticSpec(8, **toy), seed=2, qid_offset=100)

    common = ["--domain", "audio", "--model", "qd_detr", "--feature", "clap", "--no-progress",
              "--features-root", str(features), "--device", "cpu", *SMALL_MODEL]  # fmt: skip
    pretrain = root / "results/pretrain/qd_detr/clotho-moment/clap"
    finetune = root / "results/finetune/qd_detr/castella/clap"
    preds, submission = root / "castella_test_preds.jsonl", root / "castella_test_submission.jsonl"
    steps = [
        ["train", "--dataset", "clotho-moment", *common, f"train_path={clotho / 'train.jsonl'}",
         f"eval_path={clotho / 'val.jsonl'}", f"results_dir={root / 'results/pretrain'}",
         "n_epoch=2", "bsz=8"],
        ["train", "--dataset", "castella", *common, "--init-from", str(pretrain / "best.ckpt"),
         f"train_path={root / 'castella_train.jsonl'}", f"eval_path={root / 'castella_val.jsonl'}",
         f"results_dir={root / 'results/finetune'}", "n_epoch=3", "max_a_l=300", "max_v_l=300",
         "max_windows=5", "selection_metric=MR-full-R1@0.7", "bsz=12", "lr=0.0005"],
        ["infer", "--checkpoint", str(finetune / "best.ckpt"), "--jsonl",
         str(root / "castella_test.jsonl"), "--features", str(features / "castella"),
         "--out", str(preds), "--eval", "--no-progress"],
        ["submission", "--predictions", str(preds), "--jsonl", str(root / "castella_test.jsonl"),
         "--out", str(submission)],
    ]  # fmt: skip
    # One thread: deterministic, and on a shared two-core machine two threads contend and run
    # several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            for argv in steps:
                assert main(argv) == 0, (argv[0], out.getvalue()[-2000:])
    finally:
        torch.set_num_threads(threads)
    return SimpleNamespace(
        root=root, features=features, test=subsets["test"], pretrain=pretrain, finetune=finetune,
        preds=preds, submission=submission, stdout=out.getvalue(),
    )  # fmt: skip


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_real_test_query_gets_one_row_in_file_order(recipe):
    rows = read_jsonl(recipe.submission)
    assert [row["qid"] for row in rows] == [line["qid"] for line in recipe.test]
    for row, line in zip(rows, recipe.test, strict=True):
        assert tuple(row) == SUBMISSION_KEYS
        assert (row["query"], row["duration"], row["vid"]) == (
            line["query"], line["duration"], line["vid"]
        )  # fmt: skip


def test_windows_are_whole_seconds_inside_the_limit_best_first(recipe):
    predictions = {line["qid"]: line for line in read_jsonl(recipe.preds)}
    for row in read_jsonl(recipe.submission):
        windows = row["pred_relevant_windows"]
        assert windows, row["qid"]
        for start, end in windows:
            assert type(start) is int and type(end) is int
            assert 0 <= start < end <= MAX_END
        assert len({tuple(w) for w in windows}) == len(windows)

        # infer's windows are sorted by score and snapped to whole seconds within [0, 300]
        # (CASTELLA's max_ts_val), so the submission is them without scores, in order, without
        # repeats, with a zero-length window widened to one second.
        rows = predictions[row["qid"]]["pred_relevant_windows"]
        scores = [score for _, _, score in rows]
        assert scores == sorted(scores, reverse=True)
        expected: list[list[int]] = []
        for start, end, _ in rows:
            assert float(start).is_integer() and float(end).is_integer()
            assert 0 <= start <= end <= MAX_END
            window = [int(start), int(end)] if end > start else [int(start), int(start) + 1]
            window = window if window[1] <= MAX_END else [MAX_END - 1, MAX_END]
            if window not in expected:
                expected.append(window)
        assert windows == expected


def test_predicting_from_the_checkpoint_writes_the_same_file(recipe, capsys):
    out = recipe.root / "from_checkpoint.jsonl"
    argv = ["submission", "--checkpoint", str(recipe.finetune / "best.ckpt"),
            "--features", str(recipe.features / "castella"),
            "--jsonl", str(recipe.root / "castella_test.jsonl"), "--out", str(out),
            "--no-progress"]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    assert out.read_bytes() == recipe.submission.read_bytes()
    assert "1 recording(s) longer than the model's span" in capsys.readouterr().out


def test_validation_r1_at_0_7_picked_the_fine_tuned_best_ckpt(recipe):
    assert "fine-tuning from weights in" in recipe.stdout
    config = (recipe.finetune / "config.yaml").read_text()
    assert "selection_metric: MR-full-R1@0.7" in config
    epochs = []
    for line in (recipe.finetune / "val.log").read_text().splitlines():
        epoch = int(line.split("[Epoch] ")[1].split()[0])
        epochs.append((epoch, json.loads(line.split("[Metrics] ")[1])))
    assert [epoch for epoch, _ in epochs] == [0, 1, 2]
    r1 = [metrics["MR-full-R1@0.7"] for _, metrics in epochs]
    assert max(r1) > 0
    # best.ckpt is the first epoch reaching the best R1@0.7 (a later tie is no improvement)
    best_epoch = r1.index(max(r1))
    assert load_checkpoint(recipe.finetune / "best.ckpt")["epoch"] == best_epoch
    best_metrics = json.loads((recipe.finetune / "best_val_metrics.json").read_text())
    assert best_metrics["brief"] == epochs[best_epoch][1]
    assert f"best MR-full-R1@0.7 {max(r1):.2f} at epoch {best_epoch}" in recipe.stdout


def test_infer_scored_the_test_split(recipe):
    metrics = json.loads(recipe.preds.with_suffix(".metrics.json").read_text())
    assert {"MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP"} <= set(metrics["brief"])
