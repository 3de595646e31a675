"""Every command of ``lighthouse --help`` against bad inputs: one line on stderr, never a
traceback, exit 2 for what the user gave (1 when the work itself failed), and nothing written.

The table covers each command; a command added to the CLI without rows here fails
:func:`test_the_table_covers_every_command`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lighthouse_audio.cli.main import build_parser, main
from lighthouse_audio.testing.synthetic import SyntheticSpec, write_split

SPEC = dict(duration=20, num_classes=2, min_window=3, max_window=6, min_tokens=3, max_tokens=5)


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """A folder of good features and bad files, shared by all rows (rows only read it)."""
    root = tmp_path_factory.mktemp("bad_inputs")
    write_split(root / "features" / "custom", "val", SyntheticSpec(4, **SPEC), seed=2)
    (root / "garbage.jsonl").write_text("not json\n")
    (root / "latin1.jsonl").write_bytes(b'{"qid": "caf\xe9"}\n')
    (root / "empty.jsonl").write_bytes(b"")
    (root / "garbage.ckpt").write_bytes(b"\x00not a checkpoint" * 10)
    torch.save({"model": {}, "opt": [1, 2]}, root / "opt_list.ckpt")
    torch.save({"model": {}, "opt": {"lr": 1e-4}}, root / "no_model_name.ckpt")
    (root / "audio").mkdir()
    (root / "audio" / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (root / "audio" / "empty.wav").write_bytes(b"")
    (root / "metrics.json").write_text(json.dumps({"not": "metrics"}))
    return root


VAL = "features/custom/val.jsonl"
FEATS = "features/custom"
TRAIN = ["train", "--dataset", "custom", "--feature", "clap", "--no-progress",
         "--features-root", "features", f"train_path={VAL}", f"eval_path={VAL}",
         "results_dir=out/results", "n_epoch=1"]  # fmt: skip
INFER = ["--jsonl", VAL, "--features", FEATS, "--out", "out/p.jsonl", "--no-progress"]

# (argv, exit status, text the error must contain)
TABLE: list[tuple[list[str], int, str]] = [
    (["list", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ([*TRAIN, "device=tpu"], 2, "unknown device 'tpu'"),
    ([*TRAIN, "num_queries=0"], 2, "num_queries must be at least 1"),
    ([*TRAIN, "bsz=0"], 2, "bsz=0: must be a whole number >= 1"),
    ([*TRAIN, "lr=fast"], 2, "override lr='fast': expected a number"),
    ([*TRAIN, "lr_dorp=10"], 2, "unknown config key 'lr_dorp'; did you mean lr_drop?"),
    (["train", "--dataset", "nope"], 2, "nope"),
    (["train"], 2, "--dataset is required"),
    (["train", "--resume", "garbage.ckpt"], 2, "garbage.ckpt: not a readable torch checkpoint"),
    (["train", "--resume", "missing.ckpt"], 2, "missing.ckpt: checkpoint not found"),
    (["eval", "--submission", "garbage.jsonl", "--gt", VAL], 2, "garbage.jsonl:1: invalid JSON"),
    (["eval", "--submission", "empty.jsonl", "--gt", VAL], 2, "empty.jsonl: no predictions"),
    (["eval", "--submission", VAL, "--gt", "latin1.jsonl"], 2, "latin1.jsonl:1: not UTF-8"),
    (["submission", "--predictions", "garbage.jsonl", "--jsonl", VAL, "--out", "out/s.jsonl"], 2,
     "garbage.jsonl:1: invalid JSON"),
    (["submission", "--checkpoint", "garbage.ckpt", "--features", FEATS, "--jsonl", VAL, "--out",
      "out/s.jsonl"], 2, "not a readable torch checkpoint"),
    (["submission", "--predictions", VAL, "--jsonl", "latin1.jsonl", "--out", "out/s.jsonl"], 2,
     "latin1.jsonl:1: not UTF-8"),
    (["sed-eval", "--submission", "missing.jsonl", "--gt", VAL], 2, "missing.jsonl"),
    (["sed-eval", "--submission", VAL, "--gt", VAL, "--threshold", "nan"], 2,
     "argument --threshold: expected a finite number, got 'nan'"),
    (["report", "--out", "out/report", "nowhere"], 2, "no such run folder or metrics file"),
    (["report", "--out", "out/report", "X/custom=metrics.json"], 2, "metrics.json"),
    (["infer", "--checkpoint", "garbage.ckpt", *INFER], 2, "not a readable torch checkpoint"),
    (["infer", "--checkpoint", "opt_list.ckpt", *INFER], 2, "'opt' is a list"),
    (["infer", "--checkpoint", "no_model_name.ckpt", *INFER], 2, "has no model_name"),
    (["infer", "--checkpoint", "garbage.ckpt", *INFER, "--batch-size", "0"], 2,
     "argument --batch-size: expected a whole number >= 1, got '0'"),
    (["predict", "audio/corrupt.wav", "--query", "dog", "--checkpoint", "garbage.ckpt"], 2,
     "not a readable torch checkpoint"),
    (["predict", "audio/corrupt.wav", "--query", " ", "--checkpoint", "garbage.ckpt"], 2,
     "empty"),
    (["predict", "audio/corrupt.wav", "--checkpoint", "garbage.ckpt", "--top-k", "-1"], 2,
     "argument --top-k"),
    (["models", "--fetch", "nope"], 2, "unknown pretrained file 'nope'"),
    (["serve", "--checkpoint", "garbage.ckpt"], 2, "not a readable torch checkpoint"),
    (["serve", "--checkpoint", "garbage.ckpt", "--port", "70000"], 2, "argument --port"),
    (["tune-baseline", "--feature", "clap", "--features", "nowhere", "--val", VAL,
      "--no-progress"], 2, "nowhere/clap: no such feature folder"),
    (["tune-baseline", "--feature", "clap", "--features", "features/custom", "--val",
      "garbage.jsonl", "--no-progress"], 2, "garbage.jsonl:1: invalid JSON"),
    (["extract", "--feature", "nope", "--audio-dir", "audio", "--out", "out/f"], 2, "nope"),
    (["extract", "--feature", "aisfx-minilm", "--audio-dir", "nowhere", "--out", "out/f"], 2,
     "nowhere"),
    (["extract", "--feature", "aisfx-minilm", "--audio-dir", "audio", "--out", "out/f",
      "--jsonl", "garbage.jsonl", "--no-progress"], 2, "garbage.jsonl:1: invalid JSON"),
    (["simulate", "--fg-manifest", "garbage.jsonl", "--bg-dir", "audio", "--out", "out/sim",
      "--no-progress"], 2, "garbage.jsonl:1: invalid JSON"),
    (["simulate", "--out", "out/sim", "--hop", "-1"], 2, "argument --hop"),
    (["demo", "--clips", "1,2"], 2, "expected three positive counts"),
    (["demo", "--sounds", "nowhere", "--workdir", "out/demo", "--no-progress"], 2,
     "nowhere/manifest.jsonl: no manifest"),
    (["align", "--manifest", "latin1.jsonl", "--out", "out/space.pt"], 2,
     "latin1.jsonl:1: not UTF-8"),
    (["align", "--manifest", "garbage.jsonl", "--epochs", "0"], 2, "argument --epochs"),
]  # fmt: skip


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


@pytest.mark.parametrize(("argv", "status", "text"), TABLE, ids=lambda v: None)
def test_bad_input_gives_one_line(bad, monkeypatch, capsys, argv, status, text):
    monkeypatch.chdir(bad)
    assert run_cli(argv) == status
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    errors = [line for line in err_lines if ": warning: " not in line]
    assert len(errors) == 1, err_lines
    assert errors[0].startswith(f"lighthouse {argv[0]}: error: "), errors[0]
    assert text in errors[0], errors[0]
    assert "Traceback" not in "".join(err_lines)
    assert not (bad / "out").exists()  # nothing written


def test_the_table_covers_every_command():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(commands.choices) == {argv[0] for argv, _, _ in TABLE}


def test_a_batch_with_only_unreadable_recordings_fails_with_a_report(bad, monkeypatch, capsys):
    """extract skips what it cannot read, reports each file, and exits 1 when nothing was done;
    the error lines name the files."""
    monkeypatch.chdir(bad)
    argv = ["extract", "--feature", "aisfx-minilm", "--audio-dir", "audio", "--out", "out/f",
            "--no-progress"]  # fmt: skip
    try:
        assert run_cli(argv) == 1
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert "corrupt.wav: not a readable audio file" in text
        assert "empty.wav: not a readable audio file" in text
        assert "Traceback" not in text
    finally:
        import shutil

        shutil.rmtree(bad / "out", ignore_errors=True)


@pytest.mark.parametrize(
    ("command", "module", "function", "hint"),
    [
        ("extract", "lighthouse_audio.extraction.extract", "extract_features",
         "resume with: the same command (finished files are verified and kept)"),
    ],
)  # fmt: skip
def test_ctrl_c_in_a_batch_command_says_how_to_resume(
    bad, monkeypatch, capsys, command, module, function, hint
):
    import importlib

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(module), function, interrupted)
    monkeypatch.chdir(bad)
    argv = [command, "--feature", "aisfx-minilm", "--audio-dir", "audio", "--out", "out/f"]
    assert run_cli(argv) == 130
    assert capsys.readouterr().err.strip() == f"lighthouse {command}: error: interrupted; {hint}"


def test_broken_pipe_is_quiet(bad, capsys, monkeypatch):
    import sys

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError

        def flush(self):
            raise BrokenPipeError

        def fileno(self):
            return sys.__stdout__.fileno()

    monkeypatch.setattr("os.dup2", lambda *a: None)  # keep pytest's real stdout intact
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["list"]) == 141
    monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_unexpected_errors_are_one_line_unless_debugging(monkeypatch, capsys):
    import lighthouse_audio.cli.list_plugins as list_plugins

    def broken(args):
        raise RuntimeError("something\nunforeseen")

    monkeypatch.setattr(list_plugins, "run", broken)  # add_parser reads it when main builds
    assert main(["list"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "lighthouse list: error: RuntimeError: something "
        "(set LIGHTHOUSE_AUDIO_DEBUG=1 for the traceback)"
    )
    monkeypatch.setenv("LIGHTHOUSE_AUDIO_DEBUG", "1")
    with pytest.raises(RuntimeError, match="unforeseen"):
        main(["list"])
