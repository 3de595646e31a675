"""UVCOM: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``uvcom*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
checked against its checkpoint (same stem without ``_io``) and predictions file, so held-back
fixtures are covered without naming them here. Expected values always come from the fixtures;
the checks all models share are in ``lighthouse_parity.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lighthouse_audio.config import load_config
from lighthouse_audio.evaluation.metrics import eval_submission
from lighthouse_audio.models.uvcom import UVCOM, build, build_model
from lighthouse_audio.models.uvcom_clustering import random_walk_refine
from lighthouse_audio.models.uvcom_criterion import (
    UVCOMCriterion,
    first_window_frames,
    similarity_loss,
)
from lighthouse_audio.registry import MODELS
from tests.conftest import REPO_ROOT
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets
from tests.models import lighthouse_parity as parity
from tests.models.lighthouse_parity import ATOL, RTOL
from tests.models.tiny_inputs import UNUSED_TEXT_POSITIONS, without_text

IO_FILES = parity.io_files("uvcom")  # outputs observed within 4.1e-6 (public fixture)
LISTINGS = parity.listings("uvcom")

pytestmark = parity.skip_without(IO_FILES, "uvcom")


@pytest.fixture(params=IO_FILES, ids=parity.ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus its outputs."""
    fixture = parity.load_fixture(request.param, build_model)
    with torch.no_grad():
        fixture["outputs"] = fixture["model"](**fixture["io"]["inputs"])
    return fixture


# --------------------------------------------------------------------------- weights and config


def test_registered_and_built_through_the_registry(fixture):
    assert "uvcom" in MODELS.names()
    bundle = MODELS.get("uvcom")(fixture["io"]["config"])
    assert isinstance(bundle.model, UVCOM) and isinstance(bundle.criterion, UVCOMCriterion)
    assert bundle.criterion.saliency_terms == ("hinge", "rank_contrastive", "negative_pair")


def test_state_dict_layout_matches_checkpoint_and_loads_both_ways(fixture):
    ckpt = fixture["ckpt"]
    parity.assert_checkpoint_layout(build_model(fixture["io"]["config"]), ckpt)
    # ours into a Lighthouse-built model: the same keys, so a fresh build takes our state strictly
    theirs = parity.reload_strictly(fixture["model"], build_model, ckpt["opt"], ckpt["model"])
    for key, value in theirs.state_dict().items():
        assert torch.equal(value, ckpt["model"][key]), key


@pytest.mark.parametrize("listing", LISTINGS, ids=parity.ids(LISTINGS))
def test_default_config_layout_matches_listing(listing: Path, lighthouse_configs_dir):
    """The listing is of Lighthouse's default config (768-wide CLAP inputs), built from
    Lighthouse's own YAML tree."""
    opt = load_config("uvcom", "clotho-moment", "clap", root=lighthouse_configs_dir)
    parity.assert_listing_layout(build_model(opt), listing)


def test_seeded_init_reproduces_checkpoint(fixture):
    parity.assert_seeded_init_reproduces(fixture["io"], fixture["ckpt"], build_model)


def test_lighthouse_tree_loads_unchanged_and_gives_the_fixture_config(
    fixture, lighthouse_configs_dir
):
    parity.assert_trees_give_fixture_config("uvcom", fixture["io"], lighthouse_configs_dir)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    parity.assert_project_config_is_lighthouses("uvcom", lighthouse_configs_dir)


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    io = fixture["io"]
    parity.assert_outputs_close(fixture["outputs"], io["outputs"], io["output_keys"])


def test_two_separate_passes_match_the_batched_negative_pass(fixture):
    """Lighthouse runs the negative texts as a second pass; one doubled batch gives the same."""
    io, model = fixture["io"], fixture["model"]
    model.batched_negative = False
    try:
        with torch.no_grad():
            out = model(**io["inputs"])
    finally:
        model.batched_negative = True
    for key in io["output_keys"]:
        parity.assert_close_tree(out[key], io["outputs"][key], key)


def test_intermediates_match_lighthouse(fixture):
    """Pin where a divergence starts: projections, encoders, slots, decoder states."""
    io, model = fixture["io"], fixture["model"]
    names = ["input_vid_proj", "input_audio_proj", "input_txt_proj", "CIM.t2v_encoder",
             "CIM.v2t_encoder", "CIM.GKA_Module", "CIM.processer_for_tgt",
             "CIM.decoder"]  # fmt: skip
    model.batched_negative = False  # hooks then see the positive pass on its own
    try:
        with parity.recorded_calls(model, names) as got, torch.no_grad():
            model(**io["inputs"])
    finally:
        model.batched_negative = True
    expected = io["intermediates"]
    assert set(expected) <= set(names)
    num_frames = io["inputs"]["src_vid"].shape[1]
    for name, calls in expected.items():
        want, mine = calls[0], got[name][0].output  # the first call: the positive pass
        if name in ("CIM.t2v_encoder", "CIM.v2t_encoder"):
            # Lighthouse returns the whole sequence-first [global; frames; text]; ours only the
            # part each stack updates, batch-first.
            part = (
                slice(1, 1 + num_frames)
                if name == "CIM.t2v_encoder"
                else slice(1 + num_frames, None)
            )
            want = want[part].transpose(0, 1)
        elif name == "CIM.GKA_Module":
            want = want.transpose(0, 1)
        if name == "CIM.decoder":
            for g, w in zip(mine, want, strict=True):
                torch.testing.assert_close(g, w, atol=ATOL, rtol=RTOL, msg=name)
        else:
            torch.testing.assert_close(mine, want, atol=ATOL, rtol=RTOL, msg=name)


def test_time_features_collapse_to_the_clip_length(fixture):
    """Lighthouse's quirk (a bug) kept: the TEF's first LayerNorm sees two numbers, so every valid
    frame of a clip gets the same TEF projection; only the clip length changes it."""
    io, model = fixture["io"], fixture["model"]
    with torch.no_grad():
        projected = model.input_vid_proj(io["inputs"]["src_vid"])
    torch.testing.assert_close(
        projected, io["intermediates"]["input_vid_proj"][0], atol=ATOL, rtol=RTOL
    )
    for row, mask in zip(projected, io["inputs"]["src_vid_mask"].bool(), strict=True):
        valid = row[mask]
        torch.testing.assert_close(valid, valid[:1].expand_as(valid), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- matcher and losses


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    outputs = io["outputs"] if source == "fixture_outputs" else fixture["outputs"]
    criterion = build(io["config"]).criterion
    criterion(outputs, io["targets"])
    parity.assert_last_matches(criterion, io)


def test_every_loss_and_the_weighted_total_match_lighthouse(fixture):
    """Lighthouse's order of the losses, loss_sim included."""
    io = fixture["io"]
    parity.assert_losses_and_total(build(io["config"]).criterion, io, ordered=True)


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward pass, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    losses = build(io["config"]).criterion(fixture["outputs"], io["targets"])
    parity.assert_losses_close(losses, io["loss_dict"], rel_tol=RTOL)


def test_similarity_loss_alone_matches_lighthouse(fixture):
    io = fixture["io"]
    got = float(similarity_loss(io["outputs"]["sim"], io["targets"]["span_labels"]))
    assert parity.isclose(got, io["loss_dict"]["loss_sim"]), (got, io["loss_dict"]["loss_sim"])


def test_device_assignment_reproduces_the_fixture_losses(fixture):
    """``--fast``'s pieces (targets laid out as on the device, the assignment solved there) at
    the batch's own padded length: the same matches and losses as Lighthouse."""
    io = fixture["io"]
    config = {**io["config"], "assignment": "device"}
    frames = io["inputs"]["src_vid"].shape[1]
    criterion = build(config).criterion
    losses = criterion(fixture["outputs"], device_targets(io["targets"], frames))
    parity.assert_losses_close(losses, io["loss_dict"], rel_tol=RTOL)
    parity.assert_matches(criterion.last_matches.main, io["matcher_indices"])


# --------------------------------------------------------------------------- predictions


def test_postprocessed_predictions_and_metrics_match_lighthouse(fixture):
    config = fixture["io"]["config"]
    predictions = parity.assert_standalone_predictions(fixture, build(config).postprocessor)
    num_queries = config["num_queries"]
    assert all(len(p["pred_relevant_windows"]) == num_queries for p in predictions)


def test_model_predictions_match_lighthouse(fixture):
    """Our forward pass through the post-processor: the same windows; scores to one unit of
    their 4th decimal (the outputs may differ by float rounding). UVCOM's 30 scores often lie
    within 1e-5 of each other, so near-ties may swap places: the order (and with it the metrics,
    which read the first 10) is compared only when nothing swapped; the exact order and metrics
    are pinned on Lighthouse's own outputs above."""
    io = fixture["io"]
    expected = parity.standalone(io)["predictions"]
    metas = parity.metas(io)
    predictions = build(io["config"]).postprocessor(fixture["outputs"], metas)
    swapped = False
    for got, want in zip(predictions, expected, strict=True):
        assert {k: v for k, v in got.items() if k != "pred_relevant_windows"} == {
            k: v for k, v in want.items() if k != "pred_relevant_windows"
        }
        got_windows, want_windows = got["pred_relevant_windows"], want["pred_relevant_windows"]
        assert [w[2] for w in got_windows] == pytest.approx(
            [w[2] for w in want_windows], abs=parity.SCORE_ATOL
        )
        got_spans, want_spans = [w[:2] for w in got_windows], [w[:2] for w in want_windows]
        if got_spans != want_spans:
            swapped = True
            assert sorted(got_spans) == sorted(want_spans)
    if not swapped:
        assert eval_submission(predictions, metas) == parity.standalone(io)["metrics"]


# --------------------------------------------------------------------------- data


def test_dataset_builds_the_fixture_batch_from_raw_features(fixture, tmp_path):
    """The project's dataset and collate, fed the raw arrays and jsonl lines Lighthouse read,
    give its inputs and targets (Python's random seeded as the fixture was)."""
    io = fixture["io"]
    assert io["dataset_class"] == "StartEndDataset"
    parity.assert_dataset_rebuilds_the_batch(io, build_from_fixture(io, tmp_path))


# --------------------------------------------------------------------------- invariants

TINY = dict(txt_dim=16, vid_dim=2, aud_dim=12, enc_layers=1, dec_layers=2, dim_feedforward=32,
            n_txt_mu=3, n_visual_mu=4, em_iter=2)  # fmt: skip


def _tiny_batch(batch: int = 3, len_v: int = 9, len_t: int = 5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    vid_len = torch.tensor([len_v, len_v - 3, 2][:batch])
    txt_len = torch.tensor([2, len_t, 1][:batch])
    vid_mask = (torch.arange(len_v) < vid_len[:, None]).float()
    txt_mask = (torch.arange(len_t) < txt_len[:, None]).float()
    tef = torch.arange(len_v)[None, :, None] / vid_len[:, None, None]
    return dict(
        src_txt=torch.randn(batch, len_t, 16, generator=g) * txt_mask[..., None],
        src_txt_mask=txt_mask,
        src_vid=torch.cat((tef, tef + 1 / vid_len[:, None, None]), -1) * vid_mask[..., None],
        src_vid_mask=vid_mask,
        src_aud=torch.randn(batch, len_v, 12, generator=g) * vid_mask[..., None],
        src_aud_mask=vid_mask,
    )


def _tiny_targets(batch: int = 3, len_v: int = 9) -> dict:
    spans = [torch.tensor([[0.3, 0.2]]), torch.tensor([[0.5, 0.4], [0.2, 0.1]]),
             torch.tensor([[0.5, 1.0]])][:batch]  # fmt: skip
    labels = torch.zeros(batch, len_v)
    labels[:, 1:3] = 1
    return {
        "span_labels": [{"spans": s} for s in spans],
        "saliency_pos_labels": torch.tensor([[1, 2]] * batch),
        "saliency_neg_labels": torch.tensor([[0, 3]] * batch),
        "saliency_all_labels": labels,
    }


def _tiny_opt(**change) -> dict:
    opt = load_config("uvcom", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    small = {"a_feat_dim": 12, "t_feat_dim": 16, "enc_layers": 1, "dec_layers": 2,
             "dim_feedforward": 32, "n_txt_mu": 3, "n_visual_mu": 4, "em_iter": 2}  # fmt: skip
    return {**opt, **small, **change}


def test_tiny_training_step_reaches_every_used_parameter():
    """Through the criterion, as training does: every parameter gets a gradient except the
    unused text position table; global_rep_token's is exactly zero (it is overwritten before it
    can matter, README §3), as in Lighthouse."""
    torch.manual_seed(0)
    bundle = build(_tiny_opt())
    model = bundle.model.train()
    out = model(**_tiny_batch())
    assert out["pred_logits"].shape == out["pred_spans"].shape == (3, 30, 2)
    assert out["saliency_scores"].shape == out["saliency_scores_neg"].shape == (3, 9)
    losses = bundle.criterion(out, _tiny_targets())
    weights = bundle.criterion.weight_dict
    sum(losses[k] * weights[k] for k in losses if k in weights).backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == UNUSED_TEXT_POSITIONS
    assert torch.count_nonzero(model.global_rep_token.grad) == 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert float(losses["loss_sim"].detach()) != 0


def test_negative_pass_changes_no_prediction():
    """The negative pass feeds only the training loss: prediction switches it off."""
    torch.manual_seed(0)
    model = UVCOM(**TINY).eval()
    with torch.no_grad():
        with_negative = model(**_tiny_batch())
        model.negative_pass = False
        without = model(**_tiny_batch())
    assert "saliency_scores_neg" not in without
    for key in ("pred_logits", "pred_spans", "saliency_scores"):
        torch.testing.assert_close(with_negative[key], without[key], atol=1e-6, rtol=1e-6)


def test_similarity_chosen_negatives_from_neg_choose_epoch():
    """Lighthouse's ``epoch >= neg_choose_epoch`` branch: the least similar text of the batch."""
    torch.manual_seed(0)
    model = UVCOM(**TINY, neg_choose_epoch=2).eval()
    with torch.no_grad():
        early = model(**_tiny_batch(), epoch=1)
        late = model(**_tiny_batch(), epoch=2)
    assert "negative_idx" not in early["sim"]
    chosen = late["sim"]["negative_idx"]
    assert chosen.shape == (3,) and chosen.dtype == torch.int64
    assert chosen.min() >= 0 and chosen.max() < 3
    # the negatives feed the loss only: predictions are the same in both branches
    for key in ("pred_logits", "pred_spans", "saliency_scores"):
        torch.testing.assert_close(early[key], late[key])


def test_random_walk_is_the_closed_form():
    """``(1 - w)(I - w^2 A)(w Z^T c + x)`` with A = Z^T Z^: checked against a float64 loop."""
    g = torch.Generator().manual_seed(1)
    frames, centres = torch.randn(2, 6, 8, generator=g), torch.randn(2, 3, 8, generator=g)
    got = random_walk_refine(frames.double(), centres.double())
    for b in range(2):
        x, c = frames[b].double(), centres[b].double()
        z = torch.softmax(F.normalize(c, dim=-1) @ F.normalize(x, dim=-1).T * 5, dim=0)  # [K, L]
        z_hat = z / z.sum(1, keepdim=True)
        a = z.T @ z_hat
        want = 0.5 * torch.linalg.solve(torch.eye(6, dtype=a.dtype), torch.eye(6) - 0.25 * a)
        want = want @ (0.5 * z.T @ c + x)
        torch.testing.assert_close(got[b], want, atol=1e-6, rtol=1e-6)


def test_first_window_labels_follow_lighthouse_rounding_and_slices():
    valid = torch.ones(4, 10, dtype=torch.bool)
    valid[1, 6:] = False  # 6 valid frames
    spans = [
        # only the first window counts; in float32 0.25 - 0.5 * 0.3 = 0.099999994, and
        # int(0.99999994) is 0: frames 0..3, not 1..3
        torch.tensor([[0.25, 0.3], [0.9, 0.1]]),
        torch.tensor([[0.5, 1.0]]),  # [0, 1] of 6 frames -> 0..5
        torch.tensor([[0.0, 0.4]]),  # start -2 (int: -2) wraps as a Python slice: [8:2] empty
        torch.zeros(0, 2),  # no window (Lighthouse fails): no positive frame
    ]
    labels = first_window_frames([{"spans": s} for s in spans], valid)
    assert labels[0].nonzero().flatten().tolist() == [0, 1, 2, 3]
    assert labels[1].nonzero().flatten().tolist() == [0, 1, 2, 3, 4, 5]
    assert labels[2].sum() == 0 and labels[3].sum() == 0


def test_hinge_counts_a_minus_one_negative_as_score_zero():
    criterion = build(_tiny_opt()).criterion
    scores = torch.tensor([[0.5, 2.0, -1.0, 0.1]])
    targets = {"saliency_pos_labels": torch.tensor([[1, 0]]),
               "saliency_neg_labels": torch.tensor([[-1, 2]])}  # fmt: skip
    got = criterion._hinge({"saliency_scores": scores}, targets)
    margin = criterion.saliency_margin
    want = (max(0, margin + 0 - 2.0) + max(0, margin - 1.0 - 0.5)) / 2 * 2
    assert float(got) == pytest.approx(want)


def test_padded_length_changes_outputs_so_static_shapes_is_refused():
    """UVCOM averages over padded positions (README §7.2): padding the same batch further
    changes its predictions, hence ``static_shapes`` (padding to the span) is refused."""
    torch.manual_seed(0)
    model = UVCOM(**TINY).eval()
    inputs = _tiny_batch()
    padded = {k: F.pad(v, [0, 0] * (v.dim() - 2) + [0, 4]) for k, v in inputs.items()}
    with torch.no_grad():
        a, b = model(**inputs), model(**padded)
    assert not torch.allclose(a["pred_spans"], b["pred_spans"], atol=1e-4)
    with pytest.raises(ValueError, match="static_shapes must be false for uvcom"):
        build(_tiny_opt(static_shapes=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_dim": 128}, "UVCOM needs hidden_dim == 256"),
        ({"nheads": 3}, "nheads=3 must divide hidden_dim=256"),
        ({"num_queries": 10}, "UVCOM needs num_queries == 30"),
        ({"dec_layers": 0}, "dec_layers must be at least 1"),
        ({"span_loss_type": "ce"}, "span_loss_type must be 'l1'"),
        ({"n_input_proj": 4}, "n_input_proj must be 1, 2 or 3"),
        ({"cross_fusion": True}, "cross_fusion must be False"),
        ({"joint_prior": "space.pt"}, "joint_prior is a qd_detr option"),
        ({"neg_label_loss_coef": 0.5}, "neg_label_loss_coef is a qd_detr option"),
    ],
)
def test_build_refuses_impossible_configs_in_one_line(change: dict, message: str):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        build(_tiny_opt(**change))
    assert "\n" not in str(err.value)


def test_sim_loss_coef_zero_drops_the_similarity_loss():
    bundle = build(_tiny_opt(sim_loss_coef=0))
    assert "loss_sim" not in bundle.criterion.weight_dict
    torch.manual_seed(0)
    with torch.no_grad():
        losses = bundle.criterion(bundle.model.eval()(**_tiny_batch()), _tiny_targets())
    assert "loss_sim" not in losses


def test_one_decoder_layer_and_no_aux_loss():
    with torch.no_grad():
        one = UVCOM(**{**TINY, "dec_layers": 1}).eval()(**_tiny_batch())
        assert one["aux_outputs"] == []
        assert "aux_outputs" not in UVCOM(**TINY, aux_loss=False).eval()(**_tiny_batch())


def test_single_sample_batch_pairs_with_itself():
    torch.manual_seed(0)
    model = UVCOM(**TINY).eval()
    with torch.no_grad():
        out = model(**_tiny_batch(batch=1))
    torch.testing.assert_close(out["saliency_scores_neg"], out["saliency_scores"])


def test_empty_text_is_a_one_line_error():
    model = UVCOM(**TINY).eval()
    with pytest.raises(ValueError, match="at least one text token"):
        model(**without_text(_tiny_batch()))
