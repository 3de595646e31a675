"""Moment-DETR: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``moment_detr*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``)
is checked against its checkpoint (same stem without ``_io``) and predictions file, so held-back
fixtures are covered without naming them here. Expected values always come from the fixtures;
the checks all models share are in ``lighthouse_parity.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from lighthouse_audio.config import load_config
from lighthouse_audio.models.criterion import SetCriterion
from lighthouse_audio.models.matcher import HungarianMatcher
from lighthouse_audio.models.moment_detr import MomentDETR, build, build_model
from lighthouse_audio.registry import MODELS
from tests.conftest import REPO_ROOT
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets, static_inputs
from tests.models import lighthouse_parity as parity
from tests.models.lighthouse_parity import ATOL, RTOL
from tests.models.tiny_inputs import (
    UNUSED_TEXT_POSITIONS,
    tiny_batch,
    with_noisy_padding,
    without_text,
)

IO_FILES = parity.io_files("moment_detr")  # outputs observed within 1.1e-6 (public fixture)
LISTINGS = parity.listings("moment_detr")

pytestmark = parity.skip_without(IO_FILES, "moment_detr")


@pytest.fixture(params=IO_FILES, ids=parity.ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus its outputs."""
    fixture = parity.load_fixture(request.param, build_model)
    with torch.no_grad():
        fixture["outputs"] = fixture["model"](**fixture["io"]["inputs"])
    return fixture


# --------------------------------------------------------------------------- weights and config


def test_registered_and_built_through_the_registry(fixture):
    assert "moment_detr" in MODELS.names()
    bundle = MODELS.get("moment_detr")(fixture["io"]["config"])
    assert isinstance(bundle.model, MomentDETR)
    assert bundle.criterion.saliency_terms == ("hinge",)


def test_state_dict_layout_matches_checkpoint(fixture):
    parity.assert_checkpoint_layout(build_model(fixture["io"]["config"]), fixture["ckpt"])


@pytest.mark.parametrize("listing", LISTINGS, ids=parity.ids(LISTINGS))
def test_default_config_layout_matches_listing(listing: Path, lighthouse_configs_dir):
    """The listing is of Lighthouse's default config (768-wide CLAP inputs), built from
    Lighthouse's own YAML tree."""
    opt = load_config("moment_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    parity.assert_listing_layout(build_model(opt), listing)


def test_seeded_init_reproduces_checkpoint(fixture):
    parity.assert_seeded_init_reproduces(fixture["io"], fixture["ckpt"], build_model)


def test_lighthouse_tree_loads_unchanged_and_gives_the_fixture_config(
    fixture, lighthouse_configs_dir
):
    parity.assert_trees_give_fixture_config("moment_detr", fixture["io"], lighthouse_configs_dir)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    parity.assert_project_config_is_lighthouses("moment_detr", lighthouse_configs_dir)


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    io = fixture["io"]
    parity.assert_outputs_close(fixture["outputs"], io["outputs"], io["output_keys"])


def test_intermediates_match_lighthouse(fixture):
    """Pin where a divergence starts: projections, positions, encoder memory, decoder states."""
    io, model = fixture["io"], fixture["model"]
    names = ["input_vid_proj", "input_txt_proj", "position_embed", "transformer.encoder",
             "transformer.decoder"]  # fmt: skip
    with parity.recorded_calls(model, names) as got, torch.no_grad():
        model(**io["inputs"])
    expected = io["intermediates"]
    assert set(expected) <= set(names)
    # Lighthouse's encoder is sequence-first [L, B, d] and its decoder [layers, Q, B, d].
    layout = {"transformer.encoder": (0, 1), "transformer.decoder": (1, 2)}
    for name, calls in expected.items():
        assert len(calls) == 1, name
        want = calls[0]
        if name in layout:
            want = want.transpose(*layout[name])
        torch.testing.assert_close(got[name][-1].output, want, atol=ATOL, rtol=RTOL, msg=name)


# --------------------------------------------------------------------------- matcher and losses


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    outputs = io["outputs"] if source == "fixture_outputs" else fixture["outputs"]
    criterion = build(io["config"]).criterion
    criterion(outputs, io["targets"])
    parity.assert_last_matches(criterion, io)


def test_every_loss_and_the_weighted_total_match_lighthouse(fixture):
    io = fixture["io"]
    parity.assert_losses_and_total(build(io["config"]).criterion, io, ordered=False)


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward pass, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    losses = build(io["config"]).criterion(fixture["outputs"], io["targets"])
    parity.assert_losses_close(losses, io["loss_dict"], rel_tol=RTOL)


def test_saliency_loss_is_the_hinge_alone(fixture):
    """Moment-DETR's outputs carry no negative pass and no video mask; a criterion asked for
    QD-DETR's extra terms would need them."""
    io = fixture["io"]
    assert "saliency_scores_neg" not in io["outputs"] and "video_mask" not in io["outputs"]
    config = io["config"]
    qd_terms = SetCriterion(HungarianMatcher(), {}, config["eos_coef"], ["saliency"])
    with pytest.raises(KeyError):
        qd_terms(io["outputs"], io["targets"])
    hinge = SetCriterion(
        HungarianMatcher(), {}, config["eos_coef"], ["saliency"],
        saliency_margin=config["saliency_margin"], saliency_terms=["hinge"],
    )  # fmt: skip
    got = float(hinge(io["outputs"], io["targets"])["loss_saliency"])
    assert parity.isclose(got, io["loss_dict"]["loss_saliency"])


def test_fast_path_reproduces_the_fixture_losses(fixture):
    """Inputs padded to the span and max_q_l (static shapes), targets laid out as on the device,
    the assignment solved on the device: the same matches and losses as Lighthouse."""
    io, model = fixture["io"], fixture["model"]
    config = {**io["config"], "assignment": "device"}
    frames, tokens = int(config["max_v_l"]), int(config["max_q_l"])
    with torch.no_grad():
        outputs = model(**static_inputs(io["inputs"], frames, tokens))
    criterion = build(config).criterion
    losses = criterion(outputs, device_targets(io["targets"], frames))
    parity.assert_losses_close(losses, io["loss_dict"], rel_tol=RTOL)
    parity.assert_matches(criterion.last_matches.main, io["matcher_indices"])


# --------------------------------------------------------------------------- predictions


def test_postprocessed_predictions_and_metrics_match_lighthouse(fixture):
    parity.assert_standalone_predictions(fixture, build(fixture["io"]["config"]).postprocessor)


def test_model_predictions_match_lighthouse(fixture):
    io = fixture["io"]
    postprocessor = build(io["config"]).postprocessor
    parity.assert_model_predictions(
        postprocessor, fixture["outputs"], parity.metas(io), parity.standalone(io)
    )


# --------------------------------------------------------------------------- data


def test_dataset_builds_the_fixture_batch_from_raw_features(fixture, tmp_path):
    """The project's dataset and collate, fed the raw arrays and jsonl lines Lighthouse read,
    give its inputs and targets (Python's random seeded as the fixture was)."""
    io = fixture["io"]
    parity.assert_dataset_rebuilds_the_batch(io, build_from_fixture(io, tmp_path))


# --------------------------------------------------------------------------- invariants

TINY = dict(txt_dim=16, vid_dim=2 + 12, hidden_dim=32, nheads=4, enc_layers=1, dec_layers=2,
            dim_feedforward=32, num_queries=5)  # fmt: skip


def test_tiny_forward_backward_reaches_every_used_parameter():
    torch.manual_seed(0)
    model = MomentDETR(**TINY).train()
    out = model(**tiny_batch())
    assert out["pred_logits"].shape == out["pred_spans"].shape == (3, 5, 2)
    assert out["saliency_scores"].shape == (3, 9)
    assert len(out["aux_outputs"]) == 1
    valid = tiny_batch()["src_vid_mask"]
    total = out["pred_logits"].sum() + out["pred_spans"].sum()
    total = total + (out["saliency_scores"] * valid).sum()
    total = total + sum(a["pred_logits"].sum() + a["pred_spans"].sum() for a in out["aux_outputs"])
    total.backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == UNUSED_TEXT_POSITIONS
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_padded_content_does_not_change_predictions():
    torch.manual_seed(0)
    model = MomentDETR(**TINY).eval()
    inputs = tiny_batch()
    noisy = with_noisy_padding(inputs)
    with torch.no_grad():
        out, out_noisy = model(**inputs), model(**noisy)
    for key in ("pred_logits", "pred_spans"):
        torch.testing.assert_close(out[key], out_noisy[key], atol=1e-6, rtol=1e-6, msg=key)
    valid = inputs["src_vid_mask"].bool()
    torch.testing.assert_close(
        out["saliency_scores"][valid], out_noisy["saliency_scores"][valid], atol=1e-6, rtol=1e-6
    )


def test_aux_outputs_follow_decoder_layers_and_aux_loss():
    with torch.no_grad():
        assert MomentDETR(**{**TINY, "dec_layers": 1}).eval()(**tiny_batch())["aux_outputs"] == []
        assert "aux_outputs" not in MomentDETR(**TINY, aux_loss=False).eval()(**tiny_batch())


def _default_opt(**change) -> dict:
    opt = load_config("moment_detr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    return {**opt, **change}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nheads": 3}, "nheads=3 must divide hidden_dim=256"),
        ({"hidden_dim": 15, "nheads": 5}, "hidden_dim must be even"),
        ({"dec_layers": 0}, "dec_layers must be at least 1"),
        ({"span_loss_type": "ce"}, "span_loss_type must be 'l1'"),
        ({"n_input_proj": 4}, "n_input_proj must be 1, 2 or 3"),
        ({"joint_prior": "space.pt"}, "joint_prior is a qd_detr option"),
        ({"neg_label_loss_coef": 0.5}, "neg_label_loss_coef is a qd_detr option"),
    ],
)
def test_build_refuses_impossible_configs_in_one_line(change: dict, message: str):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        build(_default_opt(**change))
    assert "\n" not in str(err.value)


def test_other_widths_work():
    """Unlike QD-DETR, Moment-DETR has no fixed 256-wide sine embedding (README §3)."""
    bundle = build(_default_opt(hidden_dim=128, a_feat_dim=6, t_feat_dim=5))
    assert bundle.model.input_vid_proj[0].net[1].in_features == 8
    inputs = {
        "src_txt": torch.randn(2, 3, 5), "src_txt_mask": torch.ones(2, 3),
        "src_vid": torch.rand(2, 4, 2), "src_vid_mask": torch.ones(2, 4),
        "src_aud": torch.randn(2, 4, 6),
    }  # fmt: skip
    assert bundle.model.eval()(**inputs)["pred_spans"].shape == (2, 10, 2)


def test_empty_text_is_a_one_line_error():
    model = MomentDETR(**TINY).eval()
    with pytest.raises(ValueError, match="at least one text token"):
        model(**without_text(tiny_batch()))


def test_saliency_terms_are_checked():
    with pytest.raises(ValueError, match="saliency_terms"):
        SetCriterion(HungarianMatcher(), {}, 0.1, ["saliency"], saliency_terms=["margin"])
    with pytest.raises(ValueError, match="saliency_terms"):
        SetCriterion(HungarianMatcher(), {}, 0.1, ["saliency"], saliency_terms=[])
    order = SetCriterion(HungarianMatcher(), {}, 0.1, ["saliency"],
                         saliency_terms=["negative_pair", "hinge"])  # fmt: skip
    assert order.saliency_terms == ("hinge", "negative_pair")  # Lighthouse's order of addition
