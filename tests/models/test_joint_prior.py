"""AM-DETR's joint-space prior (``joint_prior=FILE``): similarity, negatives, checkpoints."""

from __future__ import annotations

import pytest
import torch

from lighthouse_audio.joint.space import (
    JointSpace,
    JointSpaceError,
    build_head,
    save_joint_space,
)
from lighthouse_audio.models.joint_prior import SPEC_KEY, with_joint_prior_heads
from lighthouse_audio.models.qd_detr import build_model
from tests.models.test_qd_detr import _loss

AUDIO_DIM, TEXT_DIM = 12, 16


def _space_file(tmp_path, input_norm: bool = True, feature: str = "aisfx-minilm"):
    torch.manual_seed(0)
    specs = {"audio": {"kind": "mlp", "dim_in": AUDIO_DIM, "dim_hidden": 8, "dim_out": 4},
             "text": {"kind": "linear", "dim_in": TEXT_DIM, "dim_out": 4}}  # fmt: skip
    space = JointSpace(feature, build_head(specs["audio"]), build_head(specs["text"]), "mean",
                       specs, input_norm=input_norm)  # fmt: skip
    path = tmp_path / "space.pt"
    save_joint_space(path, space)
    return path, space


def _opt(path, **change):
    return dict(
        hidden_dim=256, nheads=8, enc_layers=1, dec_layers=2, dim_feedforward=32,
        num_queries=5, n_input_proj=2, input_dropout=0.5, dropout=0.1, position_embedding="sine",
        aux_loss=True, max_q_l=32, max_v_l=75, span_loss_type="l1", ctx_mode="audio_tef",
        v_feat_dim=2, a_feat_dim=AUDIO_DIM, t_feat_dim=TEXT_DIM, a_feat_types="aisfx-minilm",
        joint_prior=str(path),
    ) | change  # fmt: skip


def _batch(batch: int = 3, len_v: int = 7, len_t: int = 5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    vid_mask = (torch.arange(len_v) < torch.tensor([len_v, 4, 2][:batch])[:, None]).float()
    txt_mask = (torch.arange(len_t) < torch.tensor([2, len_t, 1][:batch])[:, None]).float()
    return dict(
        src_txt=torch.randn(batch, len_t, TEXT_DIM, generator=g) * txt_mask[..., None],
        src_txt_mask=txt_mask,
        src_vid=torch.randn(batch, len_v, 2, generator=g) * vid_mask[..., None],
        src_vid_mask=vid_mask,
        src_aud=torch.randn(batch, len_v, AUDIO_DIM, generator=g) * vid_mask[..., None],
        src_aud_mask=vid_mask,
    )


def test_similarity_is_each_samples_cosine_on_unpadded_tokens(tmp_path):
    path, space = _space_file(tmp_path)
    model = build_model(_opt(path)).eval()
    inputs = _batch()
    prior = model.joint_prior
    query = prior.embed_query(inputs["src_txt"], inputs["src_txt_mask"])
    got = (prior.embed_frames(inputs["src_aud"]) * query[:, None]).sum(-1)
    for i in range(3):
        tokens = inputs["src_txt"][i, : int(inputs["src_txt_mask"][i].sum())]
        # The stored rows unnormalised: the space normalises them itself.
        want = space.similarity(inputs["src_aud"][i] * 3.0, tokens * 0.5)
        torch.testing.assert_close(got[i], want, atol=1e-6, rtol=1e-5)


def test_negative_pass_uses_the_negative_texts_similarity(tmp_path):
    """Batched and two-pass runs agree, and the negative saliency changes with the prior."""
    path, _ = _space_file(tmp_path)
    batched = build_model(_opt(path)).eval()
    two_pass = build_model(_opt(path), batched_negative=False).eval()
    two_pass.load_state_dict(batched.state_dict())
    inputs = _batch()
    with torch.no_grad():
        out_b, out_t = batched(**inputs), two_pass(**inputs)
        for key in ("pred_logits", "pred_spans", "saliency_scores", "saliency_scores_neg"):
            torch.testing.assert_close(out_b[key], out_t[key], atol=1e-5, rtol=1e-4)
        batched.joint_prior.proj.weight.mul_(5)  # a stronger prior must move both passes
        out_s = batched(**inputs)
    assert not torch.allclose(out_s["saliency_scores_neg"], out_b["saliency_scores_neg"])
    assert not torch.allclose(out_s["pred_logits"], out_b["pred_logits"])


def test_space_stays_frozen_and_only_the_projection_learns(tmp_path):
    path, _ = _space_file(tmp_path)
    model = build_model(_opt(path)).train()
    _loss(model(**_batch())).backward()
    frozen = {n for n, p in model.named_parameters() if n.startswith("joint_prior.space.")}
    assert frozen and all(not p.requires_grad for n, p in model.named_parameters() if n in frozen)
    assert model.joint_prior.proj.weight.grad is not None
    assert torch.isfinite(model.joint_prior.proj.weight.grad).all()


def test_checkpoint_rebuilds_without_the_file(tmp_path):
    path, _ = _space_file(tmp_path)
    given = _opt(path)
    opt = with_joint_prior_heads(given)
    assert SPEC_KEY not in given  # the caller's config is not changed
    assert opt[SPEC_KEY]["input_norm"] is True  # recorded for later builds
    model = build_model(opt).eval()
    state = model.state_dict()
    path.unlink()
    again = build_model(dict(opt)).eval()
    again.load_state_dict(state)  # strict: same keys, same shapes
    inputs = _batch()
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs)["pred_spans"], model(**inputs)["pred_spans"])


def test_training_config_carries_the_files_weights(tmp_path):
    """Training records the head shapes before building; the heads must still be the file's."""
    path, space = _space_file(tmp_path)
    model = build_model(with_joint_prior_heads(_opt(path)))
    want = space.state_dict()
    got = model.joint_prior.space.state_dict()
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=0, rtol=0)


def test_a_file_with_other_shapes_leaves_the_checkpoints_heads(tmp_path):
    path, _ = _space_file(tmp_path)
    opt = with_joint_prior_heads(_opt(path))
    state = build_model(opt).state_dict()
    torch.manual_seed(1)
    other = JointSpace("aisfx-minilm", build_head({"kind": "linear", "dim_in": AUDIO_DIM,
                       "dim_out": 6}), build_head({"kind": "linear", "dim_in": TEXT_DIM,
                       "dim_out": 6}), "mean", {"audio": {"kind": "linear", "dim_in": AUDIO_DIM,
                       "dim_out": 6}, "text": {"kind": "linear", "dim_in": TEXT_DIM,
                       "dim_out": 6}}, input_norm=True)  # fmt: skip
    save_joint_space(path, other)
    build_model(dict(opt)).load_state_dict(state)  # strict: the recorded shapes were used


def test_without_the_option_the_model_is_lighthouses(tmp_path):
    path, _ = _space_file(tmp_path)
    plain = build_model(_opt(path, joint_prior=None))
    assert plain.joint_prior is None
    assert not any(k.startswith("joint_prior") for k in plain.state_dict())


def test_refuses_a_raw_rows_space_and_another_features(tmp_path):
    path, _ = _space_file(tmp_path, input_norm=False)
    with pytest.raises(JointSpaceError, match=r"space\.pt: its heads read raw rows.*--input-norm"):
        build_model(_opt(path))
    path, _ = _space_file(tmp_path, feature="clap")
    with pytest.raises(JointSpaceError, match="space.pt: joint space for feature 'clap'"):
        build_model(_opt(path))
