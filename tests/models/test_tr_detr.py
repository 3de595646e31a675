"""TR-DETR: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``tr_detr*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
checked against its checkpoint (same stem without ``_io``) and predictions file, so held-back
fixtures are covered without naming them here. Expected values always come from the fixtures;
the checks all models share are in ``lighthouse_parity.py``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lighthouse_audio.config import load_config
from lighthouse_audio.models.tr_detr import TEXT_MASK_KEY, TRDETR, build, build_model
from lighthouse_audio.models.tr_detr_criterion import (
    TRDETRCriterion,
    ctc_loss,
    sigmoid_focal_loss,
    vtc_loss,
)
from lighthouse_audio.registry import MODELS
from tests.conftest import REPO_ROOT
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets
from tests.models import lighthouse_parity as parity
from tests.models.lighthouse_parity import ATOL, RTOL
from tests.models.tiny_inputs import UNUSED_TEXT_POSITIONS, tiny_batch, without_text

IO_FILES = parity.io_files("tr_detr")  # outputs observed within 4e-6 (public fixture)
LISTINGS = parity.listings("tr_detr")
ALIGNMENT_KEYS = ("loss_vtc", "loss_ctc")  # the training objective's extra terms (train.py)

pytestmark = parity.skip_without(IO_FILES, "tr_detr")


@pytest.fixture(params=IO_FILES, ids=parity.ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus its outputs."""
    fixture = parity.load_fixture(request.param, build_model)
    with torch.no_grad():
        fixture["outputs"] = fixture["model"](**fixture["io"]["inputs"])
    return fixture


def _fixture_outputs(io: dict) -> dict:
    """Lighthouse's outputs plus the text mask our criterion reads (Lighthouse's train.py takes
    it from the model inputs)."""
    return {**io["outputs"], TEXT_MASK_KEY: io["inputs"]["src_txt_mask"]}


def _expected_losses(io: dict) -> dict[str, float]:
    """Lighthouse's criterion losses plus train.py's VTC and CTC terms."""
    training = io["training_loss"]
    return {**io["loss_dict"], "loss_vtc": training["loss_vtc"], "loss_ctc": training["loss_ctc"]}


# --------------------------------------------------------------------------- weights and config


def test_registered_and_built_through_the_registry(fixture):
    assert "tr_detr" in MODELS.names()
    bundle = MODELS.get("tr_detr")(fixture["io"]["config"])
    assert isinstance(bundle.model, TRDETR)
    assert isinstance(bundle.criterion, TRDETRCriterion)


def test_state_dict_layout_matches_checkpoint(fixture):
    parity.assert_checkpoint_layout(build_model(fixture["io"]["config"]), fixture["ckpt"])


def test_our_state_dict_loads_back_strictly(fixture):
    """Both ways: what we save is exactly the key set Lighthouse's model loads strictly."""
    ckpt_state = fixture["ckpt"]["model"]
    parity.reload_strictly(fixture["model"], build_model, fixture["io"]["config"], ckpt_state)


@pytest.mark.parametrize("listing", LISTINGS, ids=parity.ids(LISTINGS))
def test_default_config_layout_matches_listing(listing: Path, lighthouse_configs_dir):
    """The listing is of Lighthouse's default config (768-wide CLAP inputs), built from
    Lighthouse's own YAML tree."""
    opt = load_config("tr_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    parity.assert_listing_layout(build_model(opt), listing)


def test_seeded_init_reproduces_checkpoint(fixture):
    parity.assert_seeded_init_reproduces(fixture["io"], fixture["ckpt"], build_model)


def test_lighthouse_tree_loads_unchanged_and_gives_the_fixture_config(
    fixture, lighthouse_configs_dir
):
    parity.assert_trees_give_fixture_config("tr_detr", fixture["io"], lighthouse_configs_dir)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    parity.assert_project_config_is_lighthouses("tr_detr", lighthouse_configs_dir)


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    io, out = fixture["io"], fixture["outputs"]
    # Lighthouse's keys in its order, then only the text mask the CTC loss needs
    assert list(out) == [*io["output_keys"], TEXT_MASK_KEY]
    assert torch.equal(out[TEXT_MASK_KEY], io["inputs"]["src_txt_mask"])
    for key in io["output_keys"]:
        parity.assert_close_tree(out[key], io["outputs"][key], key)


def test_intermediates_match_lighthouse(fixture):
    """Pin where a divergence starts: projections, fusion, T2V, both encoder passes (the
    second is HD2MR's), decoder states and references, MR2HD's GRU summary."""
    io, model = fixture["io"], fixture["model"]
    names = ["input_vid_proj", "input_txt_proj", "fuser", "transformer.t2v_encoder",
             "transformer.encoder", "transformer.decoder", "gru_extractor"]  # fmt: skip
    with parity.recorded_calls(model, names) as got, torch.no_grad():
        model(**io["inputs"])
    expected = io["intermediates"]
    assert set(expected) <= set(names)
    num_frames = io["inputs"]["src_vid"].shape[1]
    for name, calls in expected.items():
        assert len(got[name]) == len(calls), name
        for i, ((_, mine), want) in enumerate(zip(got[name], calls, strict=True)):
            if name == "transformer.t2v_encoder":
                # Lighthouse's is sequence-first [frames; text]; the text passes through
                want = want[:num_frames].transpose(0, 1)
            elif name == "transformer.encoder":
                want = want.transpose(0, 1)  # sequence-first in Lighthouse
            if isinstance(want, (list, tuple)):
                for j, (a, b) in enumerate(zip(mine, want, strict=True)):
                    torch.testing.assert_close(a, b, atol=ATOL, rtol=RTOL, msg=f"{name} {j}")
            else:
                torch.testing.assert_close(mine, want, atol=ATOL, rtol=RTOL, msg=f"{name} {i}")


# --------------------------------------------------------------------------- matcher and losses


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    outputs = _fixture_outputs(io) if source == "fixture_outputs" else fixture["outputs"]
    criterion = build(io["config"]).criterion
    criterion(outputs, io["targets"])
    parity.assert_last_matches(criterion, io)


def test_every_loss_and_the_training_objective_match_lighthouse(fixture):
    io = fixture["io"]
    criterion = build(io["config"]).criterion
    weights = criterion.weight_dict
    lighthouse_weights = {k: v for k, v in weights.items() if k not in ALIGNMENT_KEYS}
    assert lighthouse_weights == io["weight_dict"]
    training = io["training_loss"]
    assert weights["loss_vtc"] == training["VTC_loss_coef"] == io["config"]["VTC_loss_coef"]
    assert weights["loss_ctc"] == training["CTC_loss_coef"] == io["config"]["CTC_loss_coef"]

    losses = criterion(_fixture_outputs(io), io["targets"])
    assert set(losses) == set(io["loss_dict"]) | set(ALIGNMENT_KEYS)
    parity.assert_losses_close(losses, io["loss_dict"])
    # Lighthouse's criterion sum (also its eval loss_overall), then train.py's objective
    criterion_sum = parity.weighted_total(losses, io["weight_dict"])
    assert parity.isclose(criterion_sum, io["total_weighted_loss"])
    assert parity.isclose(criterion_sum, training["weighted_criterion_sum"])
    assert training["computed_from"] == "outputs"
    assert parity.isclose(float(losses["loss_vtc"]), training["loss_vtc"])
    assert parity.isclose(float(losses["loss_ctc"]), training["loss_ctc"])
    objective = parity.weighted_total(losses, weights)
    assert parity.isclose(objective, training["total"]), (objective, training["total"])
    meters = io.get("eval", {}).get("standalone_evaluate", {}).get("loss_meters")
    if meters:
        parity.assert_loss_meters(meters, losses, criterion_sum, weights)


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward pass, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    losses = build(io["config"]).criterion(fixture["outputs"], io["targets"])
    parity.assert_losses_close(losses, _expected_losses(io), rel_tol=RTOL)


def test_fast_path_targets_reproduce_the_fixture_losses(fixture):
    """The fixture's targets laid out as on the device (padded spans, the assignment solved on
    the device): the same matches and every loss, VTC/CTC included."""
    io = fixture["io"]
    config = {**io["config"], "assignment": "device"}
    frames = io["inputs"]["src_vid"].shape[1]
    criterion = build(config).criterion
    losses = criterion(_fixture_outputs(io), device_targets(io["targets"], frames))
    parity.assert_losses_close(losses, _expected_losses(io))
    parity.assert_matches(criterion.last_matches.main, io["matcher_indices"])


def test_label_loss_is_torchvisions_sigmoid_focal_loss():
    """Hand-worked values of torchvision 0.28's formula (alpha 0.25, gamma 2)."""
    logits = torch.tensor([0.0, 0.0, 2.0, -1.0])
    targets = torch.tensor([1.0, 0.0, 1.0, 0.0])
    p = torch.sigmoid(logits)
    want = [
        math.log(2) * 0.5**2 * 0.25,  # p_t = 0.5, alpha_t = 0.25
        math.log(2) * 0.5**2 * 0.75,  # p_t = 0.5, alpha_t = 0.75
        -math.log(p[2]) * (1 - p[2]) ** 2 * 0.25,
        -math.log(1 - p[3]) * p[3] ** 2 * 0.75,
    ]
    got = sigmoid_focal_loss(logits, targets)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float32), atol=1e-7, rtol=1e-6)


def test_alignment_losses_on_hand_worked_cases():
    # VTC: cosines [[1, c], [0, c]] (text rows, video columns), c = 1/sqrt(2), temperature 0.07
    c, t = 1 / math.sqrt(2), 0.07
    text_to_video = (math.log(1 + math.exp((c - 1) / t)) + math.log(1 + math.exp(-c / t))) / 2
    video_to_text = (math.log(1 + math.exp(-1 / t)) + math.log(2)) / 2
    txt, vid = torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.tensor([[1.0, 0.0], [4.0, 4.0]])
    got = float(vtc_loss(txt, vid))
    assert math.isclose(got, (text_to_video + video_to_text) / 2, rel_tol=1e-5)
    # CTC: one frame aligned with the text, one opposite, one padded (logit 0, label 0)
    vid = torch.tensor([[[1.0, 0.0], [-2.0, 0.0], [5.0, 5.0]]])
    txt = torch.tensor([[[3.0, 0.0], [9.0, 9.0]]])  # the second token is padding
    got = ctc_loss(vid, txt, torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0]]),
                   torch.tensor([[1.0, 0.0]]))  # fmt: skip
    logits = torch.tensor([1 / 0.07, -1 / 0.07, 0.0])
    want = F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 0.0, 0.0]))
    assert math.isclose(float(got), float(want), rel_tol=1e-6)


def test_longer_positive_mask_is_cut_to_the_batch_instead_of_crashing():
    """Lighthouse crashes when ``src_pos_mask`` is longer than the batch (CASTELLA rows may run
    past the context); the frames past the batch have no logit, so they are cut."""
    vid, txt = torch.randn(2, 4, 3), torch.randn(2, 2, 3)
    vid_mask, txt_mask = torch.ones(2, 4), torch.ones(2, 2)
    pos = torch.tensor([[0.0, 1, 1, 0], [1, 0, 0, 0]])
    longer = torch.cat([pos, torch.ones(2, 3)], dim=1)
    shorter = pos[:, :2]
    base = ctc_loss(vid, txt, pos, vid_mask, txt_mask)
    assert torch.equal(ctc_loss(vid, txt, longer, vid_mask, txt_mask), base)
    padded = ctc_loss(vid, txt, F.pad(shorter, (0, 2)), vid_mask, txt_mask)
    assert torch.equal(ctc_loss(vid, txt, shorter, vid_mask, txt_mask), padded)


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
    give its inputs and targets, ``src_pos_mask`` included (Python's random seeded as the
    fixture was)."""
    io = fixture["io"]
    assert "src_pos_mask" in io["targets"]
    parity.assert_dataset_rebuilds_the_batch(io, build_from_fixture(io, tmp_path))


def test_device_split_builds_the_fixture_positive_mask(fixture, tmp_path):
    """The fast path's targets carry the same ``src_pos_mask`` (its random choices differ from
    Python's, but no query here has more than ``max_windows`` windows to shuffle)."""
    from lighthouse_audio.data.device_split import DeviceSplit

    io = fixture["io"]
    dataset = build_from_fixture(io, tmp_path)
    if any(len(m["relevant_windows"]) > dataset.max_windows for m in io["meta"]):
        pytest.skip("the fixture shuffles windows; the device draws its own order")
    split = DeviceSplit.from_dataset(dataset, "cpu")
    _, _, targets = split.batch(list(range(len(dataset))), torch.Generator().manual_seed(0))
    assert torch.equal(targets["src_pos_mask"], io["targets"]["src_pos_mask"])


def test_device_split_positive_mask_follows_the_first_kept_window(tmp_path):
    """On the fast path the mask comes from whichever window the device keeps first, by the
    plain path's rule: past the context it is all zero, and padding stays zero."""
    from lighthouse_audio.data.device_split import DeviceSplit
    from lighthouse_audio.data.targets import positive_frame_mask, span_targets
    from tests.data.test_dataset_parity import make_dataset

    many = [[1.0, 3.5], [10.2, 10.9], [20.0, 25.0], [26.0, 29.5], [5.0, 6.0], [7.0, 8.0],
            [28.2, 31.0]]  # fmt: skip
    queries = [
        {"qid": 1, "query": "a", "duration": 31.0, "vid": "a", "relevant_windows": many},
        {"qid": 2, "query": "b", "duration": 12.0, "vid": "b", "relevant_windows": [[3.0, 5.0]]},
        {"qid": 3, "query": "c", "duration": 12.0, "vid": "b", "relevant_windows": [[11.5, 12.0]]},
    ]
    dataset = make_dataset(tmp_path, queries, {"a": 30, "b": 11})
    split = DeviceSplit.from_dataset(dataset, "cpu")
    firsts = set()
    for seed in range(24):
        _, inputs, targets = split.batch([0, 1, 2], torch.Generator().manual_seed(seed))
        for i, query in enumerate(queries):
            ctx_l = int(inputs["src_vid_mask"][i].sum())
            first = next(
                w for w in query["relevant_windows"]
                if torch.equal(span_targets([list(w)], ctx_l, 1.0, 1)[0],
                               targets["span_labels"][i]["spans"][0])
            )  # fmt: skip
            firsts.add(tuple(first))
            want = F.pad(positive_frame_mask(first, ctx_l, 1.0), (0, 30 - ctx_l))
            assert torch.equal(targets["src_pos_mask"][i], want), (seed, i, first)
    assert (28.2, 31.0) in firsts and (11.5, 12.0) in firsts  # the all-zero cases were seen


# --------------------------------------------------------------------------- invariants

TINY = dict(txt_dim=16, vid_dim=2 + 12, hidden_dim=256, nheads=4, enc_layers=1, dec_layers=2,
            dim_feedforward=32, num_queries=5)  # fmt: skip


def test_tiny_forward_backward_reaches_every_used_parameter():
    torch.manual_seed(0)
    model = TRDETR(**TINY).train()
    inputs = tiny_batch()
    out = model(**inputs)
    assert out["pred_logits"].shape == out["pred_spans"].shape == (3, 5, 2)
    assert out["saliency_scores"].shape == (3, 9)
    assert len(out["aux_outputs"]) == 1
    valid = inputs["src_vid_mask"]
    total = out["pred_logits"].sum() + out["pred_spans"].sum()
    total = total + (out["saliency_scores"] * valid).sum()
    total = total + sum(a["pred_logits"].sum() + a["pred_spans"].sum() for a in out["aux_outputs"])
    total = total + out["src_txt_cls_ed"].sum() + out["src_vid_cls_ed"].sum()
    total.backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == UNUSED_TEXT_POSITIONS
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_mr2hd_slices_with_pythons_rules():
    """A span starting before the clip wraps to its end (Lighthouse slices with a negative
    start); one past the end is cut; an empty slice gives a GRU input of zeros."""
    torch.manual_seed(0)
    model = TRDETR(**TINY).eval()
    length, dim = 6, 256
    memory, vid_ed = torch.randn(3, length, dim), torch.randn(3, length, dim)
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0]]).expand(3, 2, 2)  # query 0 is the top one
    spans = torch.tensor(
        [
            [[0.0, 0.5], [0.5, 0.1]],  # frames floor(-1.5) = -2 .. floor(1.5) = 1: -2:2 is empty
            [[0.9, 0.4], [0.5, 0.1]],  # frames 4 .. 6: 4:7 cut to 4:6
            [[0.5, 0.1], [0.5, 0.1]],  # frames 2 .. 3
        ]
    )
    seen = []
    handle = model.gru_extractor.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    with torch.no_grad():
        model.mr2hd(logits, spans, memory, vid_ed)
    handle.remove()
    (gru_input,) = seen
    assert not gru_input[0].any()
    torch.testing.assert_close(gru_input[1, :2], vid_ed[1, 4:6])
    assert not gru_input[1, 2:].any()
    torch.testing.assert_close(gru_input[2, :2], vid_ed[2, 2:4])
    assert not gru_input[2, 2:].any()


def test_aux_outputs_follow_decoder_layers_and_aux_loss():
    with torch.no_grad():
        assert TRDETR(**{**TINY, "dec_layers": 1}).eval()(**tiny_batch())["aux_outputs"] == []
        assert "aux_outputs" not in TRDETR(**TINY, aux_loss=False).eval()(**tiny_batch())


def _default_opt(**change) -> dict:
    opt = load_config("tr_detr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    return {**opt, **change}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nheads": 3}, "nheads=3 must divide hidden_dim=256"),
        ({"hidden_dim": 128}, "TR-DETR needs hidden_dim == 256"),
        ({"dec_layers": 0}, "dec_layers must be at least 1"),
        ({"span_loss_type": "ce"}, "span_loss_type must be 'l1'"),
        ({"n_input_proj": 4}, "n_input_proj must be 1, 2 or 3"),
        ({"VTC_loss_coef": -1}, "VTC_loss_coef must be at least 0"),
        ({"joint_prior": "space.pt"}, "joint_prior is a qd_detr option"),
        ({"neg_label_loss_coef": 0.5}, "neg_label_loss_coef is a qd_detr option"),
    ],
)
def test_build_refuses_impossible_configs_in_one_line(change: dict, message: str):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        build(_default_opt(**change))
    assert "\n" not in str(err.value)


def test_missing_objective_keys_are_named():
    opt = _default_opt()
    del opt["CTC_loss_coef"]
    with pytest.raises(ValueError, match="tr_detr config lacks CTC_loss_coef"):
        build(opt)


def test_empty_text_is_a_one_line_error():
    model = TRDETR(**TINY).eval()
    with pytest.raises(ValueError, match="at least one text token"):
        model(**without_text(tiny_batch()))
