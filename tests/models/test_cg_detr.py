"""CG-DETR: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``cg_detr*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
checked against its checkpoint (same stem without ``_io``) and predictions file, so held-back
fixtures are covered without naming them here. Both forward calls are checked: the evaluation
call (``io["outputs"]``, no targets) and the training call with targets
(``io["extra_calls"]["train_with_targets"]``, the source of the training objective). Expected
values always come from the fixtures; the checks all models share are in
``lighthouse_parity.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lighthouse_audio.config import load_config
from lighthouse_audio.data.dataset import MomentDataset
from lighthouse_audio.data.device_split import DeviceSplit
from lighthouse_audio.models.cg_detr import CGDETR, build, build_model
from lighthouse_audio.models.cg_detr_criterion import CGDETRCriterion
from lighthouse_audio.models.training_inputs import dataset_options, training_inputs
from lighthouse_audio.registry import MODELS
from tests.conftest import REPO_ROOT
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets
from tests.models import lighthouse_parity as parity
from tests.models.lighthouse_parity import ATOL, RTOL
from tests.models.tiny_inputs import (
    UNUSED_TEXT_POSITIONS,
    tiny_batch,
    with_noisy_padding,
    without_text,
)

IO_FILES = parity.io_files("cg_detr")  # outputs observed within 7.3e-5 (public fixture)
LISTINGS = parity.listings("cg_detr")
TRAIN_CALL = "train_with_targets"

pytestmark = parity.skip_without(IO_FILES, "cg_detr")


@pytest.fixture(params=IO_FILES, ids=parity.ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus the outputs
    of both of Lighthouse's calls: evaluation (no targets) and training (with targets)."""
    fixture = parity.load_fixture(request.param, build_model)
    io, model = fixture["io"], fixture["model"]
    with torch.no_grad():
        fixture["outputs"] = model(**io["inputs"])
        fixture["train_outputs"] = model(**io["inputs"], targets=io["targets"])
    return fixture


def _calls(fixture: dict) -> list[tuple[str, dict, dict]]:
    """``(name, Lighthouse's record, our outputs)`` for each forward call in the fixture."""
    io = fixture["io"]
    calls = [("eval", io, fixture["outputs"])]
    if TRAIN_CALL in io.get("extra_calls", {}):
        calls.append((TRAIN_CALL, io["extra_calls"][TRAIN_CALL], fixture["train_outputs"]))
    return calls


# --------------------------------------------------------------------------- weights and config


def test_registered_and_built_through_the_registry(fixture):
    assert "cg_detr" in MODELS.names()
    bundle = MODELS.get("cg_detr")(fixture["io"]["config"])
    assert isinstance(bundle.model, CGDETR)
    assert isinstance(bundle.criterion, CGDETRCriterion)


def test_state_dict_layout_matches_checkpoint(fixture):
    parity.assert_checkpoint_layout(build_model(fixture["io"]["config"]), fixture["ckpt"])


def test_our_checkpoint_loads_into_a_fresh_model_strictly(fixture):
    """Both ways: our state dict (as our training writes it) loads strictly into a model
    built from the fixture's config, and gives the same outputs."""
    io, model = fixture["io"], fixture["model"]
    other = parity.reload_strictly(model, build_model, io["config"], fixture["ckpt"]["model"])
    with torch.no_grad():
        out = other(**io["inputs"])
    torch.testing.assert_close(out["pred_spans"], fixture["outputs"]["pred_spans"])


@pytest.mark.parametrize("listing", LISTINGS, ids=parity.ids(LISTINGS))
def test_default_config_layout_matches_listing(listing: Path, lighthouse_configs_dir):
    """The listing is of Lighthouse's default config (768-wide CLAP inputs), built from
    Lighthouse's own YAML tree."""
    opt = load_config("cg_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    parity.assert_listing_layout(build_model(opt), listing)


def test_seeded_init_reproduces_checkpoint(fixture):
    parity.assert_seeded_init_reproduces(fixture["io"], fixture["ckpt"], build_model)


def test_lighthouse_tree_loads_unchanged_and_gives_the_fixture_config(
    fixture, lighthouse_configs_dir
):
    parity.assert_trees_give_fixture_config("cg_detr", fixture["io"], lighthouse_configs_dir)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    parity.assert_project_config_is_lighthouses("cg_detr", lighthouse_configs_dir)


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    """Both calls, every output (None where Lighthouse gives None, bool masks exactly)."""
    for call, record, out in _calls(fixture):
        parity.assert_outputs_close(out, record["outputs"], record["output_keys"], call)


def test_intermediates_match_lighthouse(fixture):
    """Pin where a divergence starts: projections, dummy encoder, T2V (frames, attention, the
    global token's keyless pass), encoder memory, decoder states. Lighthouse's encoders are
    sequence-first; its T2V output also carries the (unchanged) dummy and text tokens."""
    io, model = fixture["io"], fixture["model"]
    names = ["input_vid_proj", "input_txt_proj", "txtproj_encoder", "transformer.t2v_encoder",
             "transformer.encoder", "transformer.decoder"]  # fmt: skip
    with parity.recorded_calls(model, names) as got, torch.no_grad():
        model(**io["inputs"])
    expected = io["intermediates"]
    assert set(expected) <= set(names)
    frames = io["inputs"]["src_vid"].shape[1]
    for name, calls in expected.items():
        # the positive pass comes first (our negative pass may add calls after it)
        for i, want in enumerate(calls):
            mine = got[name][i].output
            if name == "transformer.t2v_encoder":
                pairs = [(mine[0], want[0][:frames].transpose(0, 1))]
                if want[1].numel():  # the keyless pass has an empty attention map
                    pairs.append((mine[1], want[1]))
            elif name == "transformer.decoder":
                pairs = list(zip(mine, want, strict=True))
            elif name in ("txtproj_encoder", "transformer.encoder"):
                pairs = [(mine, want.transpose(0, 1))]
            else:
                pairs = [(mine, want)]
            for g, w in pairs:
                torch.testing.assert_close(g, w, atol=ATOL, rtol=RTOL, msg=f"{name} call {i}")


def test_forward_without_vid_skips_the_negative_pass(fixture):
    """Without ``vid`` (Lighthouse's demo and predictor path) the negative outputs are None
    and the predictions are unchanged."""
    io, model = fixture["io"], fixture["model"]
    inputs = {k: v for k, v in io["inputs"].items() if k not in ("vid", "qid")}
    with torch.no_grad():
        out = model(**inputs)
    assert out["real_neg_mask"] is None and out["saliency_scores_neg"] is None
    assert "src_txt_mask_neg" not in out
    for key in ("pred_logits", "pred_spans", "saliency_scores"):
        torch.testing.assert_close(out[key], fixture["outputs"][key], atol=0, rtol=0)


# --------------------------------------------------------------------------- matcher and losses


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    for call, record, mine in _calls(fixture):
        if "matcher_indices" not in record:
            continue
        outputs = record["outputs"] if source == "fixture_outputs" else mine
        criterion = build(io["config"]).criterion
        criterion(outputs, io["targets"])
        parity.assert_last_matches(criterion, record, call)


def test_every_loss_and_the_weighted_total_match_lighthouse(fixture):
    io = fixture["io"]
    criterion = build(io["config"]).criterion
    assert criterion.weight_dict == io["weight_dict"]
    weights = criterion.weight_dict
    totals = {}
    for call, record, _ in _calls(fixture):
        losses = criterion(record["outputs"], io["targets"])
        assert list(losses) == list(record["loss_dict"]), call  # Lighthouse's order too
        parity.assert_losses_close(losses, record["loss_dict"], call=call)
        total = parity.weighted_total(losses, weights)
        assert parity.isclose(total, record["total_weighted_loss"]), (call, total)
        totals[call] = (total, losses)
    training = io.get("training_loss")
    if training:
        source = TRAIN_CALL if TRAIN_CALL in training["computed_from"] else "eval"
        assert parity.isclose(totals[source][0], training["total"])
    meters = io.get("eval", {}).get("standalone_evaluate", {}).get("loss_meters")
    if meters:
        total, losses = totals["eval"]
        parity.assert_loss_meters(meters, losses, total, weights)


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward passes, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    criterion = build(io["config"]).criterion
    for call, record, mine in _calls(fixture):
        with torch.no_grad():  # global_rep_tokens is the parameter itself
            losses = criterion(mine, io["targets"])
        parity.assert_losses_close(losses, record["loss_dict"], rel_tol=RTOL, call=call)


def test_device_assignment_and_device_targets_reproduce_the_losses(fixture):
    """The fast path's pieces: targets laid out as ``DeviceSplit`` makes them (no
    ``relevant_clips``: the model and criterion fall back to ``saliency_all_labels``) and the
    assignment solved on the device."""
    io = fixture["io"]
    criterion = build({**io["config"], "assignment": "device"}).criterion
    frames = io["inputs"]["src_vid"].shape[1]
    targets = device_targets(io["targets"], frames)
    targets.pop("relevant_clips", None)
    with torch.no_grad():
        outputs = fixture["model"](**io["inputs"], targets=targets)
    for call, record, mine in [*_calls(fixture), (TRAIN_CALL + " (device)", None, outputs)]:
        record = record or io["extra_calls"].get(TRAIN_CALL)
        if record is None:
            continue
        with torch.no_grad():
            losses = criterion(mine, targets)
        parity.assert_losses_close(losses, record["loss_dict"], rel_tol=RTOL, call=call)
        parity.assert_matches(criterion.last_matches.main, record["matcher_indices"])


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


def _cg_dataset(io: dict, root: Path, model: CGDETR) -> MomentDataset:
    """The fixture's raw features and jsonl lines in a dataset drawing targets as the model
    asks (``dataset_options``)."""
    plain = build_from_fixture(io, root)
    config = io["config"]
    return MomentDataset(
        plain.queries, plain.audio_store, plain.text_store, max_q_l=config["max_q_l"],
        max_v_l=config["max_v_l"], max_a_l=config["max_a_l"],
        max_windows=config["max_windows"], clip_length=config["clip_length"],
        **dataset_options(model),
    )  # fmt: skip


def test_dataset_builds_the_fixture_batch_from_raw_features(fixture, tmp_path):
    """The project's dataset (with CG-DETR's ``dataset_options``) and collate, fed the raw
    arrays and jsonl lines Lighthouse read, give its inputs and targets (Python's random seeded
    as the fixture was). ``vid``/``qid`` inputs come from the metas, as the training loop
    passes them (``training_inputs``); ``relevant_clips`` is ``saliency_all_labels``."""
    io = fixture["io"]
    dataset = _cg_dataset(io, tmp_path, fixture["model"])
    metas, inputs, targets = parity.collate_fixture(io, dataset)
    extra = training_inputs(fixture["model"], metas, targets)
    from_metas = ("vid", "qid")
    for key in from_metas:
        if key in io["inputs"]:
            assert extra[key] == list(io["inputs"][key]), key
    parity.assert_inputs_equal(
        inputs, {k: v for k, v in io["inputs"].items() if k not in from_metas}
    )
    assert extra["targets"] is targets
    parity.assert_targets_equal(
        targets, io["targets"], aliases={"relevant_clips": "saliency_all_labels"}
    )


def test_device_split_draws_the_same_saliency_frames(fixture, tmp_path):
    """The resident-data path computes the saliency frames with the same clip rule: where no
    window shuffle happens (<= max_windows windows), the frames inside match exactly."""
    io = fixture["io"]
    dataset = _cg_dataset(io, tmp_path, fixture["model"])
    split = DeviceSplit.from_dataset(dataset, "cpu")
    _, inputs, targets = split.batch(np.arange(len(dataset)), torch.Generator().manual_seed(0))
    want = io["targets"]["saliency_all_labels"]
    frames = want.shape[1]
    assert inputs["src_vid"].shape[1] == frames
    for i, meta in enumerate(io["meta"]):
        if len(meta["relevant_windows"]) <= io["config"]["max_windows"]:
            assert torch.equal(targets["saliency_all_labels"][i], want[i]), i
        inside = targets["saliency_all_labels"][i].bool()
        assert inside[targets["saliency_pos_labels"][i]].all()


def test_saliency_clip_rule_by_hand(tmp_path):
    """``duration / frames`` seconds per frame for CG-DETR's saliency labels: a 10 s clip of 5
    frames makes frames 2 s long, so [4, 8] s covers frames 2..3 (not 4, as with 1 s frames)."""
    from lighthouse_audio.data.annotations import MomentQuery
    from lighthouse_audio.data.feature_store import FeatureStore

    (tmp_path / "a").mkdir()
    (tmp_path / "t").mkdir()
    np.savez(tmp_path / "a" / "rec.npz", features=np.ones((5, 4), np.float32))
    np.savez(tmp_path / "t" / "qid1.npz", last_hidden_state=np.ones((3, 4), np.float32))
    query = MomentQuery.from_dict(
        {"qid": 1, "query": "q", "duration": 10, "vid": "rec", "relevant_windows": [[4, 8]]}
    )
    labels = {}
    for rule in ("clip_length", "duration"):
        dataset = MomentDataset(
            [query], FeatureStore(tmp_path / "a", "features", max_len=None),
            FeatureStore(tmp_path / "t", "last_hidden_state", max_len=None), max_q_l=32, max_v_l=75,
            max_a_l=75, max_windows=5, clip_length=1, saliency_clip=rule,
        )  # fmt: skip
        labels[rule] = dataset[0]["targets"]["saliency_all_labels"].tolist()
    assert labels == {"clip_length": [0, 0, 0, 0, 1], "duration": [0, 0, 1, 1, 0]}
    with pytest.raises(ValueError, match="saliency_clip 'frames': choose from"):
        MomentDataset([query], None, None, max_q_l=1, max_v_l=1, max_a_l=1, max_windows=1,
                      clip_length=1, saliency_clip="frames")  # fmt: skip


# --------------------------------------------------------------------------- invariants

TINY = dict(txt_dim=16, vid_dim=2 + 12, hidden_dim=32, nheads=4, enc_layers=1, dec_layers=2,
            dim_feedforward=32, num_queries=5, t2v_layers=2, dummy_layers=1, num_dummies=3,
            total_prompts=4, num_prompts=2)  # fmt: skip


def _tiny_targets(inputs: dict) -> dict:
    """One window per sample (frames 1..2 inside), saliency pairs inside/outside it."""
    batch, frames = inputs["src_vid_mask"].shape
    labels = torch.zeros(batch, frames)
    labels[:, 1:3] = 1
    return {
        "span_labels": [{"spans": torch.tensor([[0.2, 0.2]])} for _ in range(batch)],
        "saliency_pos_labels": torch.tensor([[1, 2]] * batch),
        "saliency_neg_labels": torch.tensor([[0, 0]] * batch),
        "saliency_all_labels": labels,
    }


def _tiny_opt(**change) -> dict:
    opt = load_config("cg_detr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    tiny = dict(a_feat_dim=12, t_feat_dim=16, hidden_dim=32, nheads=4, enc_layers=1,
                dec_layers=2, dim_feedforward=32, num_queries=5, dummy_layers=1, num_dummies=3,
                total_prompts=4)  # fmt: skip
    return {**opt, **tiny, **change}


def test_tiny_training_step_reaches_every_used_parameter():
    torch.manual_seed(0)
    bundle = build(_tiny_opt())
    model = bundle.model.train()
    inputs = tiny_batch()
    targets = _tiny_targets(inputs)
    out = model(**inputs, vid=["a", "b", "c"], targets=targets)
    losses = bundle.criterion(out, targets)
    assert losses["loss_ms_align"] > 0 and losses["loss_distill"] > 0
    weights = bundle.criterion.weight_dict
    total = sum(losses[k] * weights[k] for k in losses if k in weights)
    assert torch.isfinite(total)
    total.backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == UNUSED_TEXT_POSITIONS | {  # for checkpoint compatibility, as in Lighthouse
        "txt_proj_linear.LayerNorm.weight",
        "txt_proj_linear.LayerNorm.bias",
        "txt_proj_linear.net.1.weight",
        "txt_proj_linear.net.1.bias",
    }
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("vid", "real"),
    [
        (["a", "b", "c"], [True, True, True]),
        (["a", "a", "b"], [False, True, True]),  # one non-negative row: Lighthouse's quirk path
        (["a", "a", "b", "b"], [False, True, False, True]),  # two: a plain separate term
        (["a", "a", "a"], [False, False, False]),  # no negative at all
        (["a"], [False]),  # a single sample pairs with itself
    ],
)
def test_negative_rows_follow_the_recordings_and_every_case_trains(vid, real):
    torch.manual_seed(0)
    bundle = build(_tiny_opt())
    model = bundle.model.train()
    inputs = tiny_batch(batch=3)
    inputs = {k: torch.cat([v, v[:1]])[: len(vid)] for k, v in inputs.items()}
    targets = _tiny_targets(inputs)
    targets["span_labels"] = targets["span_labels"][: len(vid)]
    out = model(**inputs, vid=vid, targets=targets)
    assert out["real_neg_mask"].tolist() == real
    if any(real):
        assert out["saliency_scores_neg"].shape == (sum(real), inputs["src_vid"].shape[1])
        assert out["src_txt_mask_neg"].shape[0] == sum(real)
    else:
        assert out["saliency_scores_neg"] is None and out["t2vattnvalues_neg"] is None
        assert "src_txt_mask_neg" not in out
    losses = bundle.criterion(out, targets)
    total = sum(losses[k] * w for k, w in bundle.criterion.weight_dict.items() if k in losses)
    assert torch.isfinite(total)
    total.backward()


def test_padded_content_does_not_change_predictions():
    torch.manual_seed(0)
    model = CGDETR(**TINY).eval()
    inputs = tiny_batch()
    noisy = with_noisy_padding(inputs)
    with torch.no_grad():
        out, out_noisy = model(**inputs), model(**noisy)
    for key in ("pred_logits", "pred_spans"):
        torch.testing.assert_close(out[key], out_noisy[key], atol=1e-5, rtol=1e-5, msg=key)
    valid = inputs["src_vid_mask"].bool()
    torch.testing.assert_close(
        out["saliency_scores"][valid], out_noisy["saliency_scores"][valid], atol=1e-5, rtol=1e-5
    )


def test_aux_outputs_follow_decoder_layers_and_aux_loss():
    with torch.no_grad():
        assert CGDETR(**{**TINY, "dec_layers": 1}).eval()(**tiny_batch())["aux_outputs"] == []
        assert "aux_outputs" not in CGDETR(**TINY, aux_loss=False).eval()(**tiny_batch())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nheads": 3}, "nheads=3 must divide hidden_dim=256"),
        ({"hidden_dim": 20, "nheads": 4}, "hidden_dim divisible by 8"),
        ({"dec_layers": 0}, "dec_layers must be at least 1"),
        ({"t2v_layers": 0}, "t2v_layers must be at least 1"),
        ({"num_dummies": 0}, "num_dummies must be at least 1"),
        ({"num_prompts": 11}, "num_prompts=11 cannot exceed total_prompts=10"),
        ({"span_loss_type": "ce"}, "span_loss_type must be 'l1'"),
        ({"n_input_proj": 4}, "n_input_proj must be 1, 2 or 3"),
        ({"joint_prior": "space.pt"}, "joint_prior is a qd_detr option"),
        ({"neg_label_loss_coef": 0.5}, "neg_label_loss_coef is a qd_detr option"),
    ],
)
def test_build_refuses_impossible_configs_in_one_line(change: dict, message: str):
    opt = load_config("cg_detr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        build({**opt, **change})
    assert "\n" not in str(err.value)


def test_other_widths_work():
    """CG-DETR's span sine embedding scales with the width (README §3): 128 runs."""
    bundle = build(_tiny_opt(hidden_dim=128, nheads=8))
    assert bundle.model.transformer.decoder.sine_feats == 64
    with torch.no_grad():
        out = bundle.model.eval()(**tiny_batch(), vid=["a", "b", "c"])
    assert out["pred_spans"].shape == (3, 5, 2)


def test_empty_text_is_a_one_line_error():
    model = CGDETR(**TINY).eval()
    with pytest.raises(ValueError, match="at least one text token"):
        model(**without_text(tiny_batch()))


def test_training_inputs_and_dataset_options_are_declared_by_the_model():
    model = CGDETR(**TINY)
    metas = [{"vid": "a", "qid": 1}, {"vid": "b", "qid": 2}]
    wrapper = torch.nn.Module()
    wrapper.module = model  # as data-parallel wrappers hold it
    extra = training_inputs(wrapper, metas, {"x": 1})
    assert extra == {"vid": ["a", "b"], "qid": [1, 2], "targets": {"x": 1}}
    assert dataset_options(model) == {"saliency_clip": "duration"}
    qd = MODELS.get("qd_detr")(load_config("qd_detr", "clotho-moment", "clap")).model
    assert training_inputs(qd, metas, None) == {} and dataset_options(qd) == {}
