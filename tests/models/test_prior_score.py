"""Moment scores mixed with the joint prior (``prior_score_mix``, models/prior_score.py)."""

from __future__ import annotations

import pytest
import torch

from lighthouse_audio.models.postprocess import build_batch_postprocessor, outputs_to_predictions
from lighthouse_audio.models.prior_score import (
    PRIOR_SIMILARITY_KEY,
    check_prior_score_mix,
    window_prior,
)
from lighthouse_audio.models.qd_detr import build_model
from tests.models.test_joint_prior import _batch, _opt, _space_file


def test_window_prior_is_the_best_frame_whose_centre_is_inside():
    similarity = torch.tensor([[0.1, 0.9, 0.3, 0.7, -0.2, 0.5]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])  # the last frame is padding
    windows = torch.tensor([[[0.0, 1.0], [2.0, 4.0], [3.0, 6.0], [4.2, 4.4], [0.6, 0.9]]])
    got = window_prior(similarity, mask, windows, hop=1.0)
    # [0, 1] holds centre 0.5; [2, 4] holds 2.5, 3.5; [3, 6] holds 3.5, 4.5 (5.5 is padding);
    # [4.2, 4.4] and [0.6, 0.9] hold no centre: the frame under their middle.
    torch.testing.assert_close(got, torch.tensor([[0.1, 0.7, 0.7, -0.2, 0.1]]))


def test_window_prior_follows_the_hop():
    similarity = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    mask = torch.ones(1, 4)
    windows = torch.tensor([[[0.5, 1.0], [1.0, 2.0]]])  # frame 1 is centred at 0.75 s
    torch.testing.assert_close(
        window_prior(similarity, mask, windows, hop=0.5), torch.tensor([[1.0, 0.0]])
    )


def _outputs(similarity: list[float]) -> dict:
    # two queries: a confident window on frame 0 and a doubtful one on frame 3 (of 4 frames)
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    spans = torch.tensor([[[0.125, 0.25], [0.875, 0.25]]])  # (center, width) of 4 s
    return {
        "pred_logits": logits,
        "pred_spans": spans,
        "video_mask": torch.ones(1, 4),
        PRIOR_SIMILARITY_KEY: torch.tensor([similarity]),
    }


META = [{"qid": 1, "query": "a dog barks", "vid": "v", "duration": 4.0}]


def test_mix_zero_is_lighthouses_score_and_the_prior_reorders():
    outputs = _outputs([0.0, 0.1, 0.2, 0.8])
    plain = outputs_to_predictions(outputs, META)[0]["pred_relevant_windows"]
    assert plain == outputs_to_predictions(outputs, META, prior_mix=0.0)[0]["pred_relevant_windows"]
    assert [w[:2] for w in plain] == [[0.0, 1.0], [3.0, 4.0]]
    confident = torch.softmax(torch.tensor([2.0, 0.0]), 0)[0].item()
    mixed = outputs_to_predictions(outputs, META, prior_mix=0.5)[0]["pred_relevant_windows"]
    assert [w[:2] for w in mixed] == [[3.0, 4.0], [0.0, 1.0]]  # the prior wins
    assert mixed[0][2] == pytest.approx(0.5 * 0.5 + 0.5 * 0.8, abs=1e-4)
    assert mixed[1][2] == pytest.approx(0.5 * confident + 0.5 * 0.0, abs=1e-4)


def test_negative_similarity_counts_as_zero():
    outputs = _outputs([-0.9, 0.0, 0.0, -0.5])
    (line,) = outputs_to_predictions(outputs, META, prior_mix=1.0)
    assert [w[2] for w in line["pred_relevant_windows"]] == [0.0, 0.0]


def test_mix_needs_the_prior_similarity():
    outputs = _outputs([0.0] * 4)
    del outputs[PRIOR_SIMILARITY_KEY]
    with pytest.raises(ValueError, match="joint_prior"):
        outputs_to_predictions(outputs, META, prior_mix=0.3)


@pytest.mark.parametrize("value", [-0.1, 1.5, "much"])
def test_mix_outside_zero_one_is_refused(value):
    with pytest.raises(ValueError, match="prior_score_mix"):
        check_prior_score_mix({"prior_score_mix": value, "joint_prior": "space.pt"})


def test_mix_without_a_joint_prior_is_refused():
    with pytest.raises(ValueError, match="no joint prior"):
        check_prior_score_mix({"prior_score_mix": 0.5})
    assert check_prior_score_mix({}) == 0.0


def test_model_reports_the_priors_similarity_and_the_config_mixes_it(tmp_path):
    path, space = _space_file(tmp_path)
    opt = _opt(path, clip_length=1.0, prior_score_mix=0.6)
    model = build_model(opt).eval()
    inputs = _batch()
    with torch.no_grad():
        out = model(**inputs)
    similarity = out[PRIOR_SIMILARITY_KEY]
    assert similarity.shape == inputs["src_vid_mask"].shape
    tokens = inputs["src_txt"][1, : int(inputs["src_txt_mask"][1].sum())]
    torch.testing.assert_close(
        similarity[1], space.similarity(inputs["src_aud"][1], tokens), atol=1e-6, rtol=1e-5
    )
    metas = [{"qid": i, "query": "q", "vid": "v", "duration": 7.0} for i in range(3)]
    mixed = build_batch_postprocessor(opt)(out, metas)
    plain = build_batch_postprocessor({**opt, "prior_score_mix": 0})(out, metas)
    assert [len(line["pred_relevant_windows"]) for line in mixed] == [5, 5, 5]
    assert mixed != plain


def test_load_model_overrides_the_mix_and_refuses_it_without_a_prior(tmp_path):
    from easydict import EasyDict

    from lighthouse_audio.config import load_config
    from lighthouse_audio.engine.checkpoint import CheckpointError, save_checkpoint
    from lighthouse_audio.models.joint_prior import with_joint_prior_heads
    from lighthouse_audio.prediction.model import load_model

    path, _ = _space_file(tmp_path)
    base = {**load_config("qd_detr", "clotho-moment", "clap", []), **_opt(path)}
    for name, opt in (("prior", with_joint_prior_heads(EasyDict(base))),
                      ("plain", EasyDict({**base, "joint_prior": None}))):  # fmt: skip
        save_checkpoint(tmp_path / f"{name}.ckpt",
                        {"model": build_model(opt).state_dict(), "opt": opt})  # fmt: skip
    assert load_model(tmp_path / "prior.ckpt").postprocessor.prior_mix == 0.0
    loaded = load_model(tmp_path / "prior.ckpt", prior_score_mix=0.4)
    assert loaded.postprocessor.prior_mix == 0.4
    assert loaded.opt["prior_score_mix"] == 0.4
    with pytest.raises(CheckpointError, match=r"plain\.ckpt: prior_score_mix=0\.4.*no joint prior"):
        load_model(tmp_path / "plain.ckpt", prior_score_mix=0.4)
