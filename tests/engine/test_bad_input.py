"""Bad inputs reach the user as one line naming the file and the problem, and write nothing."""

from pathlib import Path

import numpy as np
import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.testing.synthetic import SyntheticSpec, write_split

SPEC = dict(duration=20, num_classes=2, min_window=3, max_window=6, min_tokens=3, max_tokens=5)


@pytest.fixture
def toy(tmp_path) -> Path:
    feats = tmp_path / "features" / "custom"
    write_split(feats, "train", SyntheticSpec(8, **SPEC), seed=1)
    write_split(feats, "val", SyntheticSpec(4, **SPEC), seed=2, qid_offset=100)
    return tmp_path


def run_train(toy: Path, *extra: str) -> int:
    feats = toy / "features" / "custom"
    return main(
        [
            "train", "--dataset", "custom", "--feature", "clap", "--no-progress",
            "--features-root", str(toy / "features"), "--device", "cpu",
            f"train_path={feats / 'train.jsonl'}", f"eval_path={feats / 'val.jsonl'}",
            f"results_dir={toy / 'results'}", "n_epoch=1", *extra,
        ]
    )  # fmt: skip


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_corrupt_npz(toy, capsys):
    (toy / "features" / "custom" / "clap" / "train_3.npz").write_bytes(b"not a zip file")
    assert run_train(toy) == 2
    err = one_line_error(capsys)
    assert "train_3.npz" in err


def test_missing_feature_file(toy, capsys):
    (toy / "features" / "custom" / "clap" / "train_5.npz").unlink()
    assert run_train(toy) == 2
    err = one_line_error(capsys)
    assert "train.jsonl" in err and "train_5" in err


def test_feature_dim_mismatch(toy, capsys):
    assert run_train(toy, "a_feat_dim=512") == 2
    err = one_line_error(capsys)
    assert ".npz" in err and "768" in err and "512" in err


def test_nan_in_features(toy, capsys):
    path = toy / "features" / "custom" / "clap_text" / "qid2.npz"
    text = np.load(path)["last_hidden_state"]
    text[1, 3] = np.nan
    np.savez(path, last_hidden_state=text)
    assert run_train(toy) == 2
    err = one_line_error(capsys)
    assert "qid2.npz" in err and "nan" in err.lower()


def test_malformed_jsonl(toy, capsys):
    train = toy / "features" / "custom" / "train.jsonl"
    lines = train.read_text().splitlines()
    lines[2] = lines[2][:-5]
    train.write_text("\n".join(lines))
    assert run_train(toy) == 2
    err = one_line_error(capsys)
    assert "train.jsonl:3" in err


def test_checkpoint_of_other_dims(toy, tmp_path, capsys):
    import torch

    from lighthouse_audio.config import load_config
    from lighthouse_audio.models.bundle import build_model_bundle

    opt = load_config("qd_detr", "custom", "clap", ["a_feat_dim=512"])
    model = build_model_bundle(opt).model
    ckpt = tmp_path / "other.ckpt"
    torch.save({"model": model.state_dict(), "opt": opt}, ckpt)
    assert run_train(toy, "--init-from", str(ckpt)) == 2
    err = one_line_error(capsys)
    assert "other.ckpt" in err and "input_vid_proj" in err
