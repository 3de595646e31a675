"""TaskWeave (both variants): Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``taskweave*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
checked against its checkpoint (same stem without ``_io``) and predictions file, in both of
Lighthouse's branches (the evaluation call, ``epoch_i=None``, and every training-epoch call in
``extra_calls``), so held-back fixtures are covered without naming them here. Expected values
always come from the fixtures; the checks all models share are in ``lighthouse_parity.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from lighthouse_audio.config import load_config
from lighthouse_audio.engine.train import lighthouse_checkpoint
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.models.criterion import build_criterion
from lighthouse_audio.models.taskweave import (
    INFERENCE_FROM_EPOCH,
    LOG_VAR_KEYS,
    VARIANTS,
    TaskWeave,
    TaskWeaveCriterion,
    build_bundle,
    build_model,
    mr2hd_frame_weights,
)
from lighthouse_audio.registry import MODELS
from tests.conftest import REPO_ROOT
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets
from tests.models import lighthouse_parity as parity
from tests.models.lighthouse_parity import ATOL, RTOL
from tests.models.tiny_inputs import UNUSED_TEXT_POSITIONS, tiny_batch, without_text

IO_FILES = parity.io_files("taskweave")  # outputs observed within 5.3e-6 (public fixtures)
LISTINGS = parity.listings("taskweave")

pytestmark = parity.skip_without(IO_FILES, "taskweave")


def _epoch_of(call: dict) -> int | None:
    """The ``epoch_i`` of a recorded call, read off its ``forward_call`` text."""
    found = re.search(r"epoch_i=(None|\d+)", call["forward_call"])
    assert found, call["forward_call"]
    return None if found[1] == "None" else int(found[1])


def _calls(io: dict) -> dict[str, dict]:
    """Every recorded forward call: the evaluation call, then the extra ones."""
    return {"outputs": io, **{f"extra_calls/{k}": v for k, v in io["extra_calls"].items()}}


def _run(model: TaskWeave, io: dict, epoch: int | None) -> dict[str, Any]:
    with torch.no_grad():
        return model(**io["inputs"], epoch_i=epoch)


@pytest.fixture(params=IO_FILES, ids=parity.ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus the outputs of
    every recorded call."""
    fixture = parity.load_fixture(request.param, build_model)
    io, model = fixture["io"], fixture["model"]
    fixture["outputs"] = {
        name: _run(model, io, _epoch_of(call)) for name, call in _calls(io).items()
    }
    return fixture


def _lighthouse_outputs(out: dict) -> dict:
    """Our outputs less the two log-variance keys Lighthouse returns beside its dict."""
    return {k: v for k, v in out.items() if k not in LOG_VAR_KEYS}


# --------------------------------------------------------------------------- weights and config


def test_variant_registered_and_lighthouse_model_name_resolves(fixture):
    io = fixture["io"]
    config = io["config"]
    assert io["model"] in MODELS.names() and set(VARIANTS) <= set(MODELS.names())
    assert io["lighthouse_model_name"] == config["model_name"] == "taskweave"
    assert "taskweave" not in MODELS.names()  # an alias: no config file of that name
    for bundle in (MODELS.get(io["model"])(config), build_model_bundle(config)):
        assert isinstance(bundle.model, TaskWeave)
        assert bundle.model.mr2hd is config["mr2hd"] is VARIANTS[io["model"]]
        assert isinstance(bundle.criterion, TaskWeaveCriterion)
        assert bundle.criterion.losses.saliency_terms == (
            "hinge", "rank_contrastive", "negative_pair",
        )  # fmt: skip
    other = next(name for name in VARIANTS if name != io["model"])
    with pytest.raises(ValueError, match=f"{other} has mr2hd"):
        MODELS.get(other)(config)


def test_state_dict_layout_matches_checkpoint_both_ways(fixture, tmp_path):
    """Our state_dict has exactly Lighthouse's keys, shapes, dtypes and order, so theirs loads
    here strictly (the fixture) and ours loads there: a checkpoint we write has the same layout
    and loads back strictly."""
    model = build_model(fixture["io"]["config"])
    parity.assert_checkpoint_layout(model, fixture["ckpt"])
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 400)
    path = tmp_path / "ours.ckpt"
    torch.save(lighthouse_checkpoint(fixture["model"], optimizer, scheduler, 0, {}), path)
    ours = torch.load(path, weights_only=False)
    assert list(ours) == list(fixture["ckpt"])
    assert parity.layout(ours["model"]) == parity.layout(fixture["ckpt"]["model"])
    model.load_state_dict(ours["model"], strict=True)
    for key, value in fixture["ckpt"]["model"].items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("listing", LISTINGS, ids=parity.ids(LISTINGS))
def test_default_config_layout_matches_listing(listing: Path, lighthouse_configs_dir):
    """The listing is of Lighthouse's default config (768-wide CLAP inputs), built from
    Lighthouse's own YAML tree for the variant the file is named after."""
    variant = listing.name.split("_clap")[0]
    opt = load_config(variant, "clotho-moment", "clap", root=lighthouse_configs_dir)
    parity.assert_listing_layout(MODELS.get(variant)(opt).model, listing)


def test_seeded_init_reproduces_checkpoint(fixture):
    parity.assert_seeded_init_reproduces(fixture["io"], fixture["ckpt"], build_model)


def test_lighthouse_tree_loads_unchanged_and_gives_the_fixture_config(
    fixture, lighthouse_configs_dir
):
    """Both trees, with the run folder named after the variant as Lighthouse names it."""
    io = fixture["io"]
    parity.assert_trees_give_fixture_config(io["model"], io, lighthouse_configs_dir)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_project_config_equals_lighthouses(variant: str, lighthouse_configs_dir):
    mine = parity.assert_project_config_is_lighthouses(variant, lighthouse_configs_dir)
    assert mine.mr2hd is VARIANTS[variant]


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse_in_every_recorded_call(fixture):
    io = fixture["io"]
    assert _epoch_of(io) is None  # the evaluation call, as evaluate.py makes it
    for name, call in _calls(io).items():
        got = fixture["outputs"][name]
        parity.assert_outputs_close(
            _lighthouse_outputs(got), call["outputs"], call["output_keys"], name
        )
        for key in LOG_VAR_KEYS:
            assert got[key].shape == (1,)
            value = got[key].detach().item()
            assert value == pytest.approx(call["log_vars"][key], abs=1e-7), (name, key)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_forward_on_cuda_matches_lighthouse(fixture):
    """Device-agnostic: the model runs wherever its weights are (Lighthouse's TaskWeave moves a
    tensor to the GPU unconditionally; its fixtures were made on the CPU through a shim)."""
    io = fixture["io"]
    model = build_model(io["config"])
    model.load_state_dict(fixture["ckpt"]["model"], strict=True)
    model.cuda().eval()
    inputs = {k: v.cuda() for k, v in io["inputs"].items()}
    for name, call in _calls(io).items():
        with torch.no_grad():
            got = model(**inputs, epoch_i=_epoch_of(call))
        for key in ("pred_logits", "pred_spans", "saliency_scores", "saliency_scores_neg"):
            torch.testing.assert_close(
                got[key].cpu(), call["outputs"][key], atol=ATOL, rtol=RTOL, msg=f"{name} {key}"
            )


def test_the_epoch_picks_the_branch(fixture):
    """Training epochs 0-99 take the training branch, later epochs and None the inference
    branch; ``set_epoch`` (what the training loop calls) works like passing ``epoch_i``."""
    io, model = fixture["io"], fixture["model"]
    by_epoch = {_epoch_of(call): fixture["outputs"][name] for name, call in _calls(io).items()}
    training = next(v for k, v in by_epoch.items() if k is not None)
    inference = by_epoch[None]
    cases = [(None, inference), (0, training), (INFERENCE_FROM_EPOCH - 1, training),
             (INFERENCE_FROM_EPOCH, inference)]  # fmt: skip
    try:
        for epoch, expected in cases:
            model.set_epoch(epoch)
            with torch.no_grad():
                got = model(**io["inputs"])  # no epoch_i: the model's
            for key in ("pred_logits", "pred_spans", "saliency_scores", "saliency_scores_neg"):
                assert torch.equal(got[key], expected[key]), (epoch, key)
    finally:
        model.set_epoch(None)
    # The variants differ only at inference: MR2HD in the saliency, HD2MR in the spans too.
    differ = {
        key: not torch.equal(training[key], inference[key])
        for key in ("pred_spans", "saliency_scores", "saliency_scores_neg")
    }
    mr2hd = io["config"]["mr2hd"]
    assert differ == {"pred_spans": not mr2hd, "saliency_scores": mr2hd,
                      "saliency_scores_neg": False}  # fmt: skip


def test_negative_pass_is_batched_or_not_and_changes_no_prediction(fixture):
    io, model = fixture["io"], fixture["model"]
    expected = fixture["outputs"]["outputs"]
    try:
        model.batched_negative = False
        separate = _run(model, io, None)
        model.batched_negative, model.negative_pass = True, False
        without = _run(model, io, None)
    finally:
        model.batched_negative, model.negative_pass = True, True
    for key in ("pred_logits", "pred_spans", "saliency_scores", "saliency_scores_neg"):
        torch.testing.assert_close(separate[key], expected[key], atol=1e-5, rtol=1e-5, msg=key)
    assert "saliency_scores_neg" not in without
    for key in ("pred_logits", "pred_spans", "saliency_scores"):
        torch.testing.assert_close(without[key], expected[key], atol=1e-5, rtol=1e-5, msg=key)


def test_intermediates_match_lighthouse(fixture):
    """Pin where a divergence starts: projections, encoders, the MR side conv, the decoder (the
    positive passes only; HD2MR's inference makes two). The mask Lighthouse's side conv
    received is the padding mask: the inverted-mask bug kept for parity."""
    io, model = fixture["io"], fixture["model"]
    names = [
        "input_vid_proj", "input_txt_proj", "transformer.t2v_encoder",
        "transformer.shared_encoder", "transformer.mr_conv", "transformer.mr_decoder",
    ]  # fmt: skip
    model.negative_pass = False  # Lighthouse's hooks did not record the negative pass either
    try:
        with parity.recorded_calls(model, names) as got:
            _run(model, io, None)
    finally:
        model.negative_pass = True
    expected = io["intermediates"]
    assert set(expected) <= set(names)
    num_frames = io["inputs"]["src_vid"].shape[1]
    for name, calls in expected.items():
        if name == "transformer.mr_decoder":
            # HD2MR's first pass decodes spans that Lighthouse throws away; not decoded here.
            calls = calls[len(calls) - len(got[name]) :]
        assert len(got[name]) == len(calls), name
        for i, ((inputs, output), want) in enumerate(zip(got[name], calls, strict=True)):
            if name == "transformer.t2v_encoder":  # Lighthouse: [Lv + Lt, B, d], text unchanged
                want = want[:num_frames].transpose(0, 1)
            elif name == "transformer.shared_encoder":  # sequence-first there
                want = want.transpose(0, 1)
            elif name == "transformer.mr_conv":  # (masked conv, the mask it was given)
                padding = ~io["inputs"]["src_vid_mask"].bool()
                assert torch.equal(want[1][:, 0], padding) and torch.equal(inputs[1][:, 0], padding)
                want = want[0]
            if name == "transformer.mr_decoder":  # [hs, references]
                for mine, theirs in zip(output, want, strict=True):
                    torch.testing.assert_close(mine, theirs, atol=ATOL, rtol=RTOL, msg=name)
                continue
            torch.testing.assert_close(output, want, atol=ATOL, rtol=RTOL, msg=f"{name} {i}")


# --------------------------------------------------------------------------- matcher and losses


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    for name, call in _calls(io).items():
        outputs = call["outputs"] if source == "fixture_outputs" else fixture["outputs"][name]
        criterion = build_bundle(io["config"]).criterion
        criterion(outputs, io["targets"])
        parity.assert_last_matches(criterion, call, name)


def test_every_loss_and_the_weighted_total_match_lighthouse(fixture):
    io = fixture["io"]
    criterion = build_bundle(io["config"]).criterion
    assert criterion.weight_dict == io["weight_dict"]
    weights = criterion.weight_dict
    for name, call in _calls(io).items():
        losses = criterion(call["outputs"], io["targets"])
        assert set(losses) == set(call["loss_dict"]), name
        parity.assert_losses_close(losses, call["loss_dict"], call=name)
        total = parity.weighted_total(losses, weights)
        assert parity.isclose(total, call["total_weighted_loss"]), (name, total)
    for name, (call_name, record) in _eval_records(io).items():
        meters = record.get("loss_meters")
        if not meters:
            continue
        losses = criterion(_calls(io)[call_name]["outputs"], io["targets"])
        total = parity.weighted_total(losses, weights)
        parity.assert_loss_meters(meters, losses, total, weights, name)


def _computed_from(io: dict) -> tuple[str, dict]:
    source = io["training_loss"]["computed_from"]
    found = re.fullmatch(r"extra_calls\['(\w+)'\]", source)
    name = f"extra_calls/{found[1]}" if found else "outputs"
    assert found or source == "outputs", source
    return name, _calls(io)[name]


def test_training_objective_matches_lighthouse(fixture):
    """Lighthouse's task-uncertainty objective on the call train.py back-propagates, from the
    fixture's outputs and log-variances, and end to end from ours."""
    io = fixture["io"]
    expected = io["training_loss"]
    name, call = _computed_from(io)
    criterion = build_bundle(io["config"]).criterion
    log_vars = {key: torch.tensor([call["log_vars"][key]]) for key in LOG_VAR_KEYS}
    losses = criterion({**call["outputs"], **log_vars}, io["targets"])
    assert parity.isclose(float(losses["loss_saliency"]), expected["loss_hd"])
    for key in LOG_VAR_KEYS:
        assert float(losses[key]) == pytest.approx(expected[key], abs=1e-7)
    assert parity.isclose(float(criterion.objective(losses)), expected["total"])
    ours = criterion(fixture["outputs"][name], io["targets"])
    got = criterion.objective(ours).item()
    assert parity.isclose(got, expected["total"], rel_tol=RTOL)
    with pytest.raises(KeyError, match="hd_log_var"):
        criterion.objective(criterion(call["outputs"], io["targets"]))


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward pass, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    criterion = build_bundle(io["config"]).criterion
    for name, call in _calls(io).items():
        losses = criterion(fixture["outputs"][name], io["targets"])
        parity.assert_losses_close(losses, call["loss_dict"], rel_tol=RTOL, call=name)


def test_device_assignment_reproduces_the_fixture_matches_and_losses(fixture):
    """The fast path's matching (targets laid out as on the device, assignment solved there)."""
    io = fixture["io"]
    criterion = build_bundle({**io["config"], "assignment": "device"}).criterion
    frames = io["inputs"]["src_vid"].shape[1]
    losses = criterion(io["outputs"], device_targets(io["targets"], frames))
    parity.assert_losses_close(losses, io["loss_dict"])
    parity.assert_matches(criterion.last_matches.main, io["matcher_indices"])


# --------------------------------------------------------------------------- predictions


def _eval_records(io: dict) -> dict[str, tuple[str, dict]]:
    """Evaluation record -> (the call it was made from, the record): ``standalone_evaluate``
    is the evaluation call, ``in_training_epoch_N`` the ``epoch_N`` call."""
    records = {}
    for name, record in io.get("eval", {}).items():
        epoch = re.fullmatch(r"in_training_(epoch_\d+)", name)
        assert epoch or name == "standalone_evaluate", name
        records[name] = (f"extra_calls/{epoch[1]}" if epoch else "outputs", record)
    return records


def test_postprocessed_predictions_and_metrics_match_lighthouse(fixture):
    io = fixture["io"]
    metas = parity.metas(io)
    records = _eval_records(io)
    assert "standalone_evaluate" in records
    for record_name, (call_name, expected) in records.items():
        outputs = _calls(io)[call_name]["outputs"]
        postprocessor = build_bundle(io["config"]).postprocessor
        parity.assert_postprocessed(postprocessor, outputs, metas, expected, record_name)
    # the predictions file is evaluate.py's: the evaluation call (epoch_i=None)
    lines = parity.predictions_file(fixture["path"])
    assert lines == records["standalone_evaluate"][1]["jsonl_text"].splitlines()


def test_model_predictions_match_lighthouse(fixture):
    """Our forward passes through the post-processor, for every evaluation record."""
    io = fixture["io"]
    metas = parity.metas(io)
    for record_name, (call_name, expected) in _eval_records(io).items():
        postprocessor = build_bundle(io["config"]).postprocessor
        outputs = fixture["outputs"][call_name]
        parity.assert_model_predictions(postprocessor, outputs, metas, expected, record_name)


# --------------------------------------------------------------------------- data


def test_dataset_builds_the_fixture_batch_from_raw_features(fixture, tmp_path):
    """The project's dataset and collate, fed the raw arrays and jsonl lines Lighthouse read,
    give its inputs and targets (Python's random seeded as the fixture was)."""
    io = fixture["io"]
    assert "span_labels" in io["targets"]
    parity.assert_dataset_rebuilds_the_batch(io, build_from_fixture(io, tmp_path))


# --------------------------------------------------------------------------- MR2HD at any length


def _padded(inputs: dict, frames: int) -> dict:
    """The batch zero-padded (or cut) to ``frames`` context frames."""
    out = {}
    for key, value in inputs.items():
        if key.startswith("src_txt"):
            out[key] = value
        elif value.shape[1] >= frames:
            out[key] = value[:, :frames]
        else:
            pad = [0, 0] * (value.dim() - 2) + [0, frames - value.shape[1]]
            out[key] = F.pad(value, pad)
    return out


@pytest.mark.parametrize("frames", [60, 90])
def test_inference_runs_at_padded_lengths_other_than_75(fixture, frames: int):
    """Lighthouse's MR2HD inference crashes (size mismatch) unless the batch is padded to 75
    frames; here its grid follows the padded length (module docstring). HD2MR never had the
    fixed grid."""
    io, model = fixture["io"], fixture["model"]
    inputs = _padded(io["inputs"], frames)
    with torch.no_grad():
        out = model(**inputs, epoch_i=None)
        training = model(**inputs, epoch_i=0)
    assert out["saliency_scores"].shape == (3, frames)
    assert torch.isfinite(out["saliency_scores"]).all() and torch.isfinite(out["pred_spans"]).all()
    if model.mr2hd:  # the grid only re-weights the highlight memory: spans as in training
        assert torch.equal(out["pred_spans"], training["pred_spans"])
        assert not torch.equal(out["saliency_scores"], training["saliency_scores"])


def test_mr2hd_frame_weights_are_a_grid_of_twice_the_frames():
    # one query over the whole axis: every cell marked once, uniform unit-norm weights
    weights = mr2hd_frame_weights(torch.tensor([[[0.5, 1.0]]]), 60)
    torch.testing.assert_close(weights, torch.full((1, 60), 60**-0.5))
    # two queries [0.1, 0.3] on 2 x 10 cells: cells 2..6 marked twice; frames 1 and 2 hold two
    # marked cells each, frame 3 one (cells 6, 7)
    weights = mr2hd_frame_weights(torch.tensor([[[0.2, 0.2], [0.2, 0.2]]]), 10)
    expected = torch.tensor([[0, 2, 2, 1, 0, 0, 0, 0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(weights, expected / expected.norm())
    # spans past either end are clamped to the grid
    weights = mr2hd_frame_weights(torch.tensor([[[1.2, 0.6]]]), 5)
    torch.testing.assert_close(weights, torch.tensor([[0.0, 0, 0, 0, 1]]))


# --------------------------------------------------------------------------- invariants

TINY = dict(txt_dim=16, vid_dim=2 + 12, nheads=4, enc_layers=1, dec_layers=2,
            dim_feedforward=32, num_queries=5)  # fmt: skip


def _tiny_targets(len_v: int = 9) -> dict:
    return {
        "span_labels": [{"spans": torch.tensor([[0.5, 0.3]])} for _ in range(3)],
        "saliency_pos_labels": torch.tensor([[1, 0]] * 3),
        "saliency_neg_labels": torch.tensor([[0, 1]] * 3),
        "saliency_all_labels": torch.zeros(3, len_v).index_fill_(1, torch.tensor([1]), 1.0),
    }


@pytest.mark.parametrize("mr2hd", [True, False])
def test_training_step_gradients(mr2hd: bool):
    """The objective reaches every parameter but those Lighthouse's wiring leaves without a
    gradient (README §3): the unused text positions get none; the side conv's weight and
    LayerNorm scale (valid frames zeroed by the inverted mask, padded ones masked out by the
    decoder) and the first decoder layer's self-attention on its all-zero queries get exact
    zeros."""
    torch.manual_seed(0)
    model = TaskWeave(**TINY, mr2hd=mr2hd).train()
    model.set_epoch(0)
    criterion = TaskWeaveCriterion(
        build_criterion(load_config("taskweave_mr2hd", "custom", "clap"))
    )
    losses = criterion(model(**tiny_batch()), _tiny_targets())
    total = criterion.objective(losses)
    assert total.shape == () and torch.isfinite(total)
    total.backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == UNUSED_TEXT_POSITIONS
    zero = {n for n, p in model.named_parameters() if p.grad is not None and not p.grad.any()}
    assert zero == {
        "transformer.mr_conv.conv.weight",
        "transformer.mr_norm.weight",
        "transformer.mr_decoder.layers.0.sa_qcontent_proj.weight",
        "transformer.mr_decoder.layers.0.sa_kcontent_proj.weight",
        "transformer.mr_decoder.layers.0.sa_v_proj.weight",
    }
    assert model.hd_log_var.grad.abs() > 0 and model.mr_log_var.grad.abs() > 0


@pytest.mark.parametrize("mr2hd", [True, False])
def test_both_branches_run_at_a_short_padded_length(mr2hd: bool):
    torch.manual_seed(0)
    model = TaskWeave(**TINY, mr2hd=mr2hd).eval()
    for epoch in (None, 0):
        with torch.no_grad():
            out = model(**tiny_batch(), epoch_i=epoch)
        assert out["pred_logits"].shape == out["pred_spans"].shape == (3, 5, 2)
        assert out["saliency_scores"].shape == out["saliency_scores_neg"].shape == (3, 9)
        assert len(out["aux_outputs"]) == 1
        assert all(torch.isfinite(out[k]).all() for k in ("pred_spans", "saliency_scores"))


def _default_opt(variant: str = "taskweave_mr2hd", **change) -> dict:
    opt = load_config(variant, "clotho-moment", "clap", root=REPO_ROOT / "configs")
    return {**opt, **change}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_dim": 128}, "TaskWeave needs hidden_dim == 256"),
        ({"nheads": 3}, "nheads=3 must divide hidden_dim=256"),
        ({"dec_layers": 0}, "dec_layers must be at least 1"),
        ({"span_loss_type": "ce"}, "span_loss_type must be 'l1'"),
        ({"n_input_proj": 4}, "n_input_proj must be 1, 2 or 3"),
        ({"mr2hd": "yes"}, "mr2hd must be true or false"),
        ({"joint_prior": "space.pt"}, "joint_prior is a qd_detr option"),
        ({"neg_label_loss_coef": 0.5}, "neg_label_loss_coef is a qd_detr option"),
        ({"static_shapes": True}, "static_shapes pads every batch"),
    ],
)
def test_build_refuses_impossible_configs_in_one_line(change: dict, message: str):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        build_bundle(_default_opt(**change))
    assert "\n" not in str(err.value)


def test_empty_text_is_a_one_line_error():
    model = TaskWeave(**TINY).eval()
    with pytest.raises(ValueError, match="at least one text token"):
        model(**without_text(tiny_batch()))
