"""``lighthouse predict`` as a user runs it: tables, JSON, pictures, bad files, exit codes."""

from __future__ import annotations

import json
import re

import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.testing.dummies import write_tone
from tests.test_predictor import toy_checkpoint

pytestmark = pytest.mark.usefixtures("toy_feature")

TIME = r"\d\d:\d\d:\d\d\.\d"


@pytest.fixture
def recordings(tmp_path):
    folder = tmp_path / "recordings"
    (folder / "sub").mkdir(parents=True)
    write_tone(folder / "short.wav", 8.0)
    write_tone(folder / "sub" / "long.flac", 95.0, freq=900)
    (folder / "notes.txt").write_text("not audio, not picked up")
    return folder


def predict(*args: str) -> int:
    try:
        return main(["predict", *args, "--no-progress"])
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


def test_table_jsonl_and_pictures_for_a_folder(tmp_path, recordings, capsys):
    ckpt = toy_checkpoint(tmp_path / "toy.ckpt")
    out = tmp_path / "moments.jsonl"
    plots = tmp_path / "plots"
    code = predict(str(recordings), "--query", "a tone", "--query", "a high whistle",
                   "--checkpoint", str(ckpt), "--top-k", "2", "--jsonl", str(out),
                   "--plot", str(plots))  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert f"{recordings / 'short.wav'}  (00:00:08.0)" in printed
    assert (
        f"{recordings / 'sub' / 'long.flac'}  (00:01:35.0, predicted in 9 overlapping chunks)"
        in printed
    )
    rows = re.findall(rf"^\s+[12]  ({TIME}) - ({TIME})   score (\d\.\d\d\d)$", printed, re.M)
    assert len(rows) == 2 * 2 * 2  # recordings x queries x top-k
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(line["audio"].endswith("short.wav"), line["query"]) for line in lines] == [
        (True, "a tone"), (True, "a high whistle"), (False, "a tone"), (False, "a high whistle")
    ]  # fmt: skip
    long_line = lines[2]
    assert long_line["duration"] == 95.0 and len(long_line["pred_saliency_scores"]) == 96
    assert len(long_line["pred_relevant_windows"]) == 2
    assert all(0 <= s <= e <= 95.0 for s, e, _ in long_line["pred_relevant_windows"])
    pictures = sorted(p.name for p in plots.iterdir())
    assert pictures == ["long.png", "short.png"]
    assert all((plots / p).stat().st_size > 20_000 for p in pictures)
    assert predict(str(recordings / "short.wav"), "--query", "x", "--checkpoint", str(ckpt),
                   "--plot", str(plots)) == 0  # fmt: skip
    assert (plots / "short-2.png").exists()  # an earlier picture is never overwritten


def test_json_to_stdout_is_parseable_and_the_table_goes_to_stderr(tmp_path, recordings, capsys):
    ckpt = toy_checkpoint(tmp_path / "toy.ckpt")
    queries = tmp_path / "queries.txt"
    queries.write_text("# my queries\na tone\n\n  a hum  \n")
    code = predict(str(recordings / "short.wav"), "--queries", str(queries), "--checkpoint",
                   str(ckpt), "--json", "-", "--min-score", "0.0")  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r["query"] for r in results] == ["a tone", "a hum"]
    assert "short.wav" in captured.err


def test_bad_recordings_are_skipped_reported_and_exit_1(tmp_path, recordings, capsys):
    ckpt = toy_checkpoint(tmp_path / "toy.ckpt")
    (recordings / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (recordings / "empty.wav").write_bytes(b"")
    out = tmp_path / "o.jsonl"
    code = predict(str(recordings), str(tmp_path / "missing.wav"), "--query", "tone",
                   "--checkpoint", str(ckpt), "--jsonl", str(out))  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    for name in ("broken.wav", "empty.wav", "missing.wav"):
        (line,) = [x for x in err.splitlines() if name in x]
        assert line.startswith("lighthouse predict: skipped ")
    assert "3 of 5 recordings failed" in err
    assert len(out.read_text().splitlines()) == 2  # the good ones are all there


@pytest.mark.parametrize(
    "args,message",
    [
        (["--checkpoint", "CKPT"], "give at least one --query"),
        (["--query", " ", "--checkpoint", "CKPT"], "query 1 is empty"),
        (["--query", "x", "--checkpoint", "no-such-model"], "not a known checkpoint name"),
        (["--query", "x", "--checkpoint", "CKPT", "--top-k", "0"], "--top-k: expected a whole"),
        (["--queries", "nope.txt", "--checkpoint", "CKPT"], "nope.txt: no such queries file"),
        (
            ["--query", "x", "--checkpoint", "CKPT", "--prior-score-mix", "1.5"],
            "--prior-score-mix: expected",
        ),
        (
            ["--query", "x", "--checkpoint", "CKPT", "--prior-score-mix", "0.5"],
            "toy.ckpt: prior_score_mix=0.5: the model has no joint prior",
        ),
        (
            ["--query", "x", "--checkpoint", "CKPT", "--prior-refine", "2"],
            "--prior-refine: expected",
        ),
        (
            ["--query", "x", "--checkpoint", "CKPT", "--prior-refine", "0.4"],
            "toy.ckpt: prior_refine=0.4: the model has no joint prior",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, recordings, capsys, args, message):
    ckpt = toy_checkpoint(tmp_path / "toy.ckpt")
    args = [str(ckpt) if a == "CKPT" else a for a in args]
    assert predict(str(recordings / "short.wav"), *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("lighthouse predict: error: ")


def test_folder_without_audio_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert predict(str(tmp_path / "empty"), "--query", "x", "--checkpoint", "c.ckpt") == 2
    assert "no audio files in" in capsys.readouterr().err
