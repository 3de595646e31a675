"""EaTR: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``eatr*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
checked against its checkpoint (same stem without ``_io``) and predictions file, so held-back
fixtures are covered without naming them here. Expected values always come from the fixtures;
the checks all models share are in ``lighthouse_parity.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from lighthouse_audio.config import load_config
from lighthouse_audio.models.eatr import EaTR, build, build_model
from lighthouse_audio.models.eatr_criterion import EaTRCriterion
from lighthouse_audio.models.eatr_events import HungarianEventMatcher, pseudo_event_spans
from lighthouse_audio.registry import MODELS
from lighthouse_audio.spans import generalized_temporal_iou, span_cxw_to_xx
from tests.conftest import REPO_ROOT
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets
from tests.models import lighthouse_parity as parity
from tests.models.lighthouse_parity import ATOL, RTOL
from tests.models.tiny_inputs import UNUSED_TEXT_POSITIONS, tiny_batch, without_text

IO_FILES = parity.io_files("eatr")  # outputs observed within 1.7e-6 (public fixture)
LISTINGS = parity.listings("eatr")
TENSOR_OUTPUTS = ("pred_logits", "pred_spans", "pred_event_spans", "saliency_scores")

pytestmark = parity.skip_without(IO_FILES, "eatr")


@pytest.fixture(params=IO_FILES, ids=parity.ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus its outputs."""
    fixture = parity.load_fixture(request.param, build_model)
    with torch.no_grad():
        fixture["outputs"] = fixture["model"](**fixture["io"]["inputs"])
    return fixture


# --------------------------------------------------------------------------- weights and config


def test_registered_and_built_through_the_registry(fixture):
    assert "eatr" in MODELS.names()
    bundle = MODELS.get("eatr")(fixture["io"]["config"])
    assert isinstance(bundle.model, EaTR)
    assert isinstance(bundle.criterion, EaTRCriterion)
    assert bundle.criterion.saliency_terms == ("hinge",)


def test_state_dict_layout_matches_checkpoint(fixture):
    parity.assert_checkpoint_layout(build_model(fixture["io"]["config"]), fixture["ckpt"])


def test_our_state_dict_loads_back_strictly(fixture):
    """Both ways: what we save has exactly Lighthouse's keys, so Lighthouse loads it strictly,
    and it loads back into a fresh model giving the same outputs."""
    io, model = fixture["io"], fixture["model"]
    again = parity.reload_strictly(model, build_model, io["config"], fixture["ckpt"]["model"])
    with torch.no_grad():
        out = again(**io["inputs"])
    for key in TENSOR_OUTPUTS:
        assert torch.equal(out[key], fixture["outputs"][key]), key


@pytest.mark.parametrize("listing", LISTINGS, ids=parity.ids(LISTINGS))
def test_default_config_layout_matches_listing(listing: Path, lighthouse_configs_dir):
    """The listing is of Lighthouse's default config (768-wide CLAP inputs), built from
    Lighthouse's own YAML tree."""
    opt = load_config("eatr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    parity.assert_listing_layout(build_model(opt), listing)


def test_seeded_init_reproduces_checkpoint(fixture):
    parity.assert_seeded_init_reproduces(fixture["io"], fixture["ckpt"], build_model)


def test_decoder_shares_the_span_heads(fixture):
    """``transformer.decoder.{event,moment}_span_embed`` are the model's heads, as in Lighthouse:
    loading writes both names into one tensor, the later (top-level) name winning."""
    model, ckpt = fixture["model"], fixture["ckpt"]
    assert model.transformer.decoder.event_span_embed is model.event_span_embed
    assert model.transformer.decoder.moment_span_embed is model.moment_span_embed
    for name in ("event_span_embed", "moment_span_embed"):
        for key in (k for k in ckpt["model"] if k.startswith(f"{name}.")):
            assert torch.equal(model.state_dict()[key], ckpt["model"][key]), key
            assert torch.equal(model.state_dict()[f"transformer.decoder.{key}"], ckpt["model"][key])


def test_lighthouse_tree_loads_unchanged_and_gives_the_fixture_config(
    fixture, lighthouse_configs_dir
):
    parity.assert_trees_give_fixture_config("eatr", fixture["io"], lighthouse_configs_dir)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    parity.assert_project_config_is_lighthouses("eatr", lighthouse_configs_dir)


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    """Every output; the pseudo events (boundary indices / valid length: exact arithmetic)
    exactly."""
    io = fixture["io"]
    parity.assert_outputs_close(
        fixture["outputs"], io["outputs"], io["output_keys"], exact=["pseudo_event_spans"]
    )


def test_pseudo_events_of_the_raw_input_match_lighthouse(fixture):
    """The event targets come from the raw [TEF | audio] input alone."""
    inputs = fixture["io"]["inputs"]
    src = torch.cat((inputs["src_vid"], inputs["src_aud"]), dim=2)
    got = pseudo_event_spans(src, inputs["src_vid_mask"])
    for mine, want in zip(got, fixture["io"]["outputs"]["pseudo_event_spans"], strict=True):
        assert torch.equal(mine, want)


def test_intermediates_match_lighthouse(fixture):
    """Pin where a divergence starts: projections, encoder memory, slots, decoder states."""
    io, model = fixture["io"], fixture["model"]
    names = ["input_vid_proj", "input_txt_proj", "position_embed", "transformer.encoder",
             "transformer.decoder.slot_atten", "transformer.decoder"]  # fmt: skip
    with parity.recorded_calls(model, names) as got, torch.no_grad():
        model(**io["inputs"])
    expected = io["intermediates"]
    assert set(expected) <= set(names)
    for name, calls in expected.items():
        assert len(calls) == 1, name
        want, mine = calls[0], got[name][-1].output
        if name == "transformer.encoder":  # Lighthouse's encoder is sequence-first [L, B, d]
            want = want.transpose(0, 1)
        if name == "transformer.decoder":  # [hs [1 + layers, B, Q, d], refs [layers, B, Q, 2]]
            assert len(mine) == len(want) == 2
            for i, (ours, theirs) in enumerate(zip(mine, want, strict=True)):
                torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL, msg=f"{name} {i}")
            continue
        torch.testing.assert_close(mine, want, atol=ATOL, rtol=RTOL, msg=name)


# --------------------------------------------------------------------------- matchers and losses


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_and_event_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    outputs = io["outputs"] if source == "fixture_outputs" else fixture["outputs"]
    criterion = build(io["config"]).criterion
    criterion(outputs, io["targets"])
    parity.assert_last_matches(criterion, io)
    if source == "fixture_outputs":
        parity.assert_matches(criterion.last_event_matches, io["event_matcher_indices"])
    else:
        _assert_same_or_tied(criterion, outputs, io["event_matcher_indices"])


def _assert_same_or_tied(criterion: EaTRCriterion, outputs: dict, want: list) -> None:
    """Pseudo events of equal width can tie exactly in real arithmetic (the public fixture
    has one); our outputs differ from Lighthouse's by float rounding (a few 1e-8 here), which
    may break such a tie the other way. Any other difference is a real mismatch."""
    got = criterion.last_event_matches
    assert len(got) == len(want)
    matcher = criterion.event_matcher
    for i, ((gi, gj), (wi, wj)) in enumerate(zip(got, want, strict=True)):
        if torch.equal(gi, wi) and torch.equal(gj, wj):
            continue
        assert len(gi) == len(wi) == len(gj) == len(wj), i
        pred = outputs["pred_event_spans"][i : i + 1].double()
        events = [outputs["pseudo_event_spans"][i].double()]
        cost = matcher.cost_span * torch.cdist(pred, events[0][None], p=1)[0]
        cost = cost - matcher.cost_giou * generalized_temporal_iou(
            span_cxw_to_xx(pred[0]), span_cxw_to_xx(events[0])
        )
        totals = [float(cost[gi, gj].sum()), float(cost[wi, wj].sum())]
        assert totals[0] == pytest.approx(totals[1], rel=1e-6, abs=1e-6), (i, totals)


def test_every_loss_and_the_weighted_total_match_lighthouse(fixture):
    io = fixture["io"]
    parity.assert_losses_and_total(build(io["config"]).criterion, io, ordered=True)


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward pass, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    losses = build(io["config"]).criterion(fixture["outputs"], io["targets"])
    parity.assert_losses_close(losses, io["loss_dict"], rel_tol=RTOL)


def test_fast_path_reproduces_the_fixture_losses(fixture):
    """--fast (device-resident batches padded to the batch maximum, the assignment on the
    device): targets laid out as on the device give Lighthouse's matches and losses."""
    io = fixture["io"]
    config = {**io["config"], "assignment": "device"}
    criterion = build(config).criterion
    frames = io["inputs"]["src_vid"].shape[1]
    losses = criterion(io["outputs"], device_targets(io["targets"], frames))
    parity.assert_losses_close(losses, io["loss_dict"])
    parity.assert_matches(criterion.last_matches.main, io["matcher_indices"])
    parity.assert_matches(criterion.last_event_matches, io["event_matcher_indices"])


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


def _tiny_targets(batch: int = 3) -> dict:
    return {
        "span_labels": [{"spans": torch.tensor([[0.4, 0.3]])} for _ in range(batch)],
        "saliency_pos_labels": torch.tensor([[1, 0]] * batch),
        "saliency_neg_labels": torch.tensor([[0, 1]] * batch),
        "saliency_all_labels": torch.zeros(batch, 9),
    }


def test_tiny_forward_backward_reaches_every_used_parameter():
    torch.manual_seed(0)
    model = EaTR(**TINY).train()
    out = model(**tiny_batch())
    assert out["pred_logits"].shape == out["pred_spans"].shape == (3, 5, 2)
    assert out["pred_event_spans"].shape == (3, 5, 2)
    assert out["saliency_scores"].shape == (3, 9)
    assert len(out["aux_outputs"]) == 1 and len(out["pseudo_event_spans"]) == 3
    valid = tiny_batch()["src_vid_mask"]
    total = out["pred_logits"].sum() + out["pred_spans"].sum() + out["pred_event_spans"].sum()
    total = total + (out["saliency_scores"] * valid).sum()
    total = total + sum(a["pred_logits"].sum() + a["pred_spans"].sum() for a in out["aux_outputs"])
    total.backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == UNUSED_TEXT_POSITIONS
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_tiny_training_step_through_the_criterion():
    opt = _default_opt(hidden_dim=32, nheads=4, enc_layers=1, dim_feedforward=32,
                       num_queries=5, a_feat_dim=12, t_feat_dim=16)  # fmt: skip
    torch.manual_seed(0)
    model, criterion, _ = build(opt)
    losses = criterion(model.train()(**tiny_batch()), _tiny_targets())
    weights = criterion.weight_dict
    assert {"loss_event_span", "loss_event_giou"} <= set(losses) and set(weights) <= set(losses)
    total = sum(losses[k] * weights[k] for k in weights)
    total.backward()
    assert torch.isfinite(total)
    # the event heads learn (their last layer starts at zero, so it gets the first gradient)
    assert model.event_span_embed.layers[-1].weight.grad.abs().sum() > 0


def test_pseudo_events_pair_consecutive_boundaries_across_the_batch():
    """Lighthouse's batch-wide pairing: with one sample the first event pairs the first
    boundary with the last (a negative width); every boundary gives one event."""
    g = torch.Generator().manual_seed(1)
    frames = torch.randn(1, 12, 6, generator=g)
    (events,) = pseudo_event_spans(frames, torch.ones(1, 12))
    assert len(events) >= 2  # frames 0 and 11 are always boundaries
    assert events[0, 1] < 0 and (events[1:, 1] > 0).all()
    # (first, last) = (0, 11): center 5.5 frames, width -11 frames = minus the other widths
    assert float(events[0, 0]) == pytest.approx(5.5 / 12)
    assert float(events[0, 1]) == pytest.approx(-float(events[1:, 1].sum())) == -11 / 12


def test_event_losses_are_zero_not_nan_without_any_pseudo_event():
    """Lighthouse would take the mean of nothing (NaN); training goes on with 0 instead."""
    opt = _default_opt(hidden_dim=32, nheads=4, enc_layers=1, dim_feedforward=32,
                       num_queries=5, a_feat_dim=12, t_feat_dim=16)  # fmt: skip
    torch.manual_seed(0)
    model, criterion, _ = build(opt)
    with torch.no_grad():
        out = model.eval()(**tiny_batch())
    out["pseudo_event_spans"] = [torch.zeros(0, 2) for _ in range(3)]
    losses = criterion(out, _tiny_targets())
    assert float(losses["loss_event_span"]) == float(losses["loss_event_giou"]) == 0.0
    assert all(len(i) == 0 for i, _ in criterion.last_event_matches)


def test_event_matcher_handles_more_events_than_queries():
    pred = torch.tensor([[[0.2, 0.1], [0.7, 0.2]]])
    events = [torch.tensor([[0.1, 0.1], [0.25, 0.1], [0.72, 0.2], [0.9, 0.05]])]
    ((pred_idx, tgt_idx),) = HungarianEventMatcher(10, 1)(pred, events)
    assert pred_idx.tolist() == [0, 1] and tgt_idx.tolist() == [1, 2]


def test_aux_outputs_follow_decoder_layers_and_aux_loss():
    with torch.no_grad():
        assert EaTR(**{**TINY, "dec_layers": 1}).eval()(**tiny_batch())["aux_outputs"] == []
        assert "aux_outputs" not in EaTR(**TINY, aux_loss=False).eval()(**tiny_batch())


def _default_opt(**change) -> dict:
    opt = load_config("eatr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    return {**opt, **change}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nheads": 3}, "nheads=3 must divide hidden_dim=256"),
        ({"hidden_dim": 15, "nheads": 5}, "hidden_dim must be even"),
        ({"dec_layers": 0}, "dec_layers must be at least 1"),
        ({"span_loss_type": "ce"}, "span_loss_type must be 'l1'"),
        ({"n_input_proj": 4}, "n_input_proj must be 1, 2 or 3"),
        ({"event_coef": -1}, "event_coef must be at least 0"),
        ({"joint_prior": "space.pt"}, "joint_prior is a qd_detr option"),
        ({"neg_label_loss_coef": 0.5}, "neg_label_loss_coef is a qd_detr option"),
        ({"static_shapes": True}, "static_shapes pads every batch"),
    ],
)
def test_build_refuses_impossible_configs_in_one_line(change: dict, message: str):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        build(_default_opt(**change))
    assert "\n" not in str(err.value)


def test_other_widths_work():
    """Unlike QD-DETR, EaTR's span sine embedding follows the width (README §3)."""
    bundle = build(_default_opt(hidden_dim=128, a_feat_dim=6, t_feat_dim=5))
    assert bundle.model.input_vid_proj[0].net[1].in_features == 8
    inputs = {
        "src_txt": torch.randn(2, 3, 5), "src_txt_mask": torch.ones(2, 3),
        "src_vid": torch.rand(2, 4, 2), "src_vid_mask": torch.ones(2, 4),
        "src_aud": torch.randn(2, 4, 6),
    }  # fmt: skip
    assert bundle.model.eval()(**inputs)["pred_spans"].shape == (2, 10, 2)


def test_empty_text_is_a_one_line_error():
    model = EaTR(**TINY).eval()
    with pytest.raises(ValueError, match="at least one text token"):
        model(**without_text(tiny_batch()))
