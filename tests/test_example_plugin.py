"""The example plugin (examples/plugin, docs/ARCHITECTURE.md) installed as a user would, then
found through its entry point and used end to end: list, extract, train, predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import soundfile as sf

from tests.conftest import REPO_ROOT, SHARED

PLUGIN = REPO_ROOT / "examples" / "plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PLUGIN)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"pip could not install the example plugin: {done.stderr[-500:]}")
    return target


def lighthouse(env: dict, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lighthouse_audio.cli.main", *args],
        capture_output=True, text=True, env=env, cwd=cwd,
    )  # fmt: skip


def test_the_installed_plugin_extracts_trains_and_predicts(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed)}
    listed = lighthouse(env, "list")
    assert listed.returncode == 0 and "  band-energy  [audio]" in listed.stdout
    assert "  custom + band-energy" in listed.stdout

    lines = [json.loads(x) for x in (SHARED / "sounds" / "manifest.jsonl").read_text().splitlines()]
    clips = [d for d in lines if d["role"] == "fg" and 2 <= d["duration"] <= 5][:8]
    audio = tmp_path / "audio"
    audio.mkdir()
    annotations = []
    for qid, clip in enumerate(clips):
        vid = f"clip{qid}"
        (audio / f"{vid}.flac").symlink_to(SHARED / "sounds" / clip["path"])
        duration = sf.info(SHARED / "sounds" / clip["path"]).duration
        window = [0.0, float(int(duration))]
        annotations.append(
            {"qid": qid, "query": clip["caption"], "duration": duration, "vid": vid,
             "relevant_windows": [window]}
        )  # fmt: skip
    ann = tmp_path / "ann.jsonl"
    ann.write_text("".join(json.dumps(a) + "\n" for a in annotations))
    feats = tmp_path / "features"
    extracted = lighthouse(
        env, "extract", "--feature", "band-energy", "--audio-dir", str(audio), "--jsonl", str(ann),
        "--out", str(feats / "custom"), "--no-progress",
    )  # fmt: skip
    assert extracted.returncode == 0, extracted.stderr
    assert "audio: 8 written" in extracted.stdout and "text: 8 written" in extracted.stdout

    trained = lighthouse(env, "train", "--dataset", "custom", "--feature", "band-energy",
                         "--features-root", str(feats), "--device", "cpu", "--no-progress",
                         f"train_path={ann}", f"eval_path={ann}", f"results_dir={tmp_path / 'r'}",
                         "n_epoch=2", "bsz=4", "max_v_l=8", "max_a_l=8")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    run = tmp_path / "r" / "qd_detr" / "custom" / "band-energy"
    checkpoint = run / ("best.ckpt" if (run / "best.ckpt").exists() else "last.ckpt")

    query = clips[0]["caption"]
    predicted = lighthouse(
        env, "predict", str(audio / "clip0.flac"), "--query", query, "--checkpoint",
        str(checkpoint), "--json", "-",
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    (result,) = json.loads(predicted.stdout)
    assert result["query"] == query and result["pred_relevant_windows"]
