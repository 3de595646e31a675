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


def _normed_space(pooling="mean"):
    space = _space(pooling)
    space.input_norm = True
    return space


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_input_norm_space_ignores_row_scale(pooling):
    """Raw rows and the L2-normalised rows AM-DETR's loader gives must embed alike."""
    space = _normed_space(pooling)
    frames, tokens = torch.randn(7, 6), torch.randn(3, 5)
    scaled_tokens = tokens * (torch.rand(3, 1) * 10 + 0.1)
    torch.testing.assert_close(
        space.similarity(frames * 7.5, scaled_tokens), space.similarity(frames, tokens)
    )
    assert not torch.allclose(  # a raw-rows space does depend on the scale
        _space(pooling).similarity(frames * 7.5, tokens), _space(pooling).similarity(frames, tokens)
    )


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padded_text_rows_equal_unpadded(pooling):
    space = _normed_space(pooling)
    lengths = [3, 1, 5]
    tokens = torch.randn(3, 5, 5)
    mask = (torch.arange(5) < torch.tensor(lengths)[:, None]).float()
    batch = space.embed_text(tokens * mask[..., None] + 9 * (1 - mask[..., None]), mask)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(batch[i], space.embed_text(tokens[i, :n]))


def test_input_norm_survives_save_and_old_files_read_as_raw(tmp_path):
    save_joint_space(tmp_path / "n.pt", _normed_space())
    assert load_joint_space(tmp_path / "n.pt").input_norm is True
    save_joint_space(tmp_path / "old.pt", _space())
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    del payload["input_norm"]  # written before the option existed
    torch.save(payload, tmp_path / "old.pt")
    assert load_joint_space(tmp_path / "old.pt").input_norm is False
