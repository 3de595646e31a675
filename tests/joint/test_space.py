import pytest
import torch

from lighthouse_audio.joint.space import (
    JointSpace,
    JointSpaceError,
    build_head,
    load_joint_space,
    save_joint_space,
)


def _space(pooling="mean"):
    torch.manual_seed(0)
    specs = {"audio": {"kind": "mlp", "dim_in": 6, "dim_hidden": 8, "dim_out": 4},
             "text": {"kind": "linear", "dim_in": 5, "dim_out": 4}}  # fmt: skip
    return JointSpace(
        "toy", build_head(specs["audio"]), build_head(specs["text"]), pooling, specs, {"n": 3}
    )


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_similarity_is_cosine_of_pooled_query(pooling):
    space = _space(pooling)
    frames, tokens = torch.randn(7, 6), torch.randn(3, 5)
    pooled = tokens[-1] if pooling == "last" else tokens.mean(0)
    a = space.audio_head(frames)
    t = space.text_head(pooled)
    expected = torch.nn.functional.cosine_similarity(a, t[None], dim=-1)
    torch.testing.assert_close(space.similarity(frames, tokens), expected)


def test_save_load_round_trip(tmp_path):
    space = _space()
    save_joint_space(tmp_path / "s.pt", space)
    loaded = load_joint_space(tmp_path / "s.pt", feature="toy")
    frames, tokens = torch.randn(4, 6), torch.randn(2, 5)
    torch.testing.assert_close(loaded.similarity(frames, tokens), space.similarity(frames, tokens))
    assert loaded.meta == {"n": 3} and loaded.text_pooling == "mean"


def test_load_refuses_other_feature_missing_and_garbage(tmp_path):
    save_joint_space(tmp_path / "s.pt", _space())
    with pytest.raises(JointSpaceError, match="for feature 'toy', not 'clap'"):
        load_joint_space(tmp_path / "s.pt", feature="clap")
    with pytest.raises(JointSpaceError, match="no such joint-space file"):
        load_joint_space(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not torch")
    with pytest.raises(JointSpaceError, match="bad.pt: not a readable joint-space file"):
        load_joint_space(tmp_path / "bad.pt")


def test_unknown_head_kind():
    with pytest.raises(JointSpaceError, match="unknown head kind 'conv'"):
        build_head({"kind": "conv"})
