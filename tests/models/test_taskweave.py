"""TaskWeave (both variants): Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``taskweave*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
checked against its checkpoint (same stem without ``_io``) and predictions file, in both of
Lighthouse's branches (the evaluation call, ``epoch_i=None``, and every training-epoch call in
``extra_calls``), so held-back fixtures are covered without naming them here. Expected values
always come from the fixtures.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lighthouse_audio.config import load_config
from lighthouse_audio.data.collate import collate
from lighthouse_audio.engine.train import lighthouse_checkpoint
from lighthouse_audio.evaluation.metrics import eval_submission
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.models.criterion import build_criterion
from lighthouse_audio.models.postprocess import outputs_to_predictions
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
from tests.conftest import REPO_ROOT, model_fixture_files
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets

IO_FILES = model_fixture_files("taskweave*_io.pt")
LISTINGS = model_fixture_files("taskweave*_state_dict.txt")
ATOL = RTOL = 1e-4  # the fixtures' README §9; observed <= 5.3e-6 on the public fixtures
LOSS_RTOL = 1e-5

pytestmark = pytest.mark.skipif(not IO_FILES, reason="no taskweave*_io.pt fixtures found")


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _sibling(io_path: Path, suffix: str) -> Path:
    return io_path.with_name(io_path.name.replace("_io.pt", suffix))


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


@pytest.fixture(params=IO_FILES, ids=_ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus the outputs of
    every recorded call."""
    io = torch.load(request.param, weights_only=True)
    ckpt = torch.load(_sibling(request.param, ".ckpt"), weights_only=False)  # `opt`: EasyDict
    model = build_model(io["config"])
    model.load_state_dict(ckpt["model"], strict=True)  # copies: the shared storage is untouched
    model.eval()
    outputs = {name: _run(model, io, _epoch_of(call)) for name, call in _calls(io).items()}
    return {"path": request.param, "io": io, "ckpt": ckpt, "model": model, "outputs": outputs}


def _layout(state: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in state.items()]


def _isclose(got: float, want: float, rel_tol: float = LOSS_RTOL) -> bool:
    return math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-7)


def _metas(io: dict) -> list[dict]:
    return [dict(meta) for meta in io["meta"]]


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
    assert _layout(model.state_dict()) == _layout(fixture["ckpt"]["model"])
    assert list(fixture["ckpt"]) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 400)
    path = tmp_path / "ours.ckpt"
    torch.save(lighthouse_checkpoint(fixture["model"], optimizer, scheduler, 0, {}), path)
    ours = torch.load(path, weights_only=False)
    assert list(ours) == list(fixture["ckpt"])
    assert _layout(ours["model"]) == _layout(fixture["ckpt"]["model"])
    model.load_state_dict(ours["model"], strict=True)
    for key, value in fixture["ckpt"]["model"].items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("listing", LISTINGS, ids=_ids(LISTINGS))
def test_default_config_layout_matches_listing(listing: Path, lighthouse_configs_dir):
    """The listing is of Lighthouse's default config (768-wide CLAP inputs), built from
    Lighthouse's own YAML tree for the variant the file is named after."""
    text = listing.read_text()
    variant = listing.name.split("_clap")[0]
    rows = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("[]").split(",") if d)
        rows.append((key, dims, getattr(torch, dtype)))
    counts = re.search(r"num tensors: (\d+); num elements: (\d+)", text)
    assert counts, f"{listing.name} has no 'num tensors/num elements' header"
    assert len(rows) == int(counts[1])
    assert sum(int(np.prod(s)) for _, s, _ in rows) == int(counts[2])
    opt = load_config(variant, "clotho-moment", "clap", root=lighthouse_configs_dir)
    model = MODELS.get(variant)(opt).model
    assert _layout(model.state_dict()) == rows
    assert sum(p.numel() for p in model.state_dict().values()) == int(counts[2])


def test_seeded_init_reproduces_checkpoint(fixture):
    """The fixture weights are Lighthouse's seeded init plus recorded noise (README §2), so the
    same construction order gives them back; tensors stored as shifted windows of a shared
    buffer (all but the first of each group) hold no initialised values to compare."""
    io, ckpt = fixture["io"], fixture["ckpt"]
    random.seed(io["seed"])
    np.random.seed(io["seed"])
    torch.manual_seed(io["seed"])
    model = build_model(io["config"])
    noise = torch.Generator().manual_seed(io["seed"] + 1000)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=noise) * io["perturb_std"])
    sharing = io.get("weight_sharing") or {}
    windows = {key for group in sharing.get("groups", []) for key in group["keys"][1:]}
    state = model.state_dict()
    compared = [key for key in ckpt["model"] if key not in windows]
    assert len(compared) >= len(ckpt["model"]) - len(windows) > 0
    for key in compared:
        torch.testing.assert_close(state[key], ckpt["model"][key], atol=1e-7, rtol=0, msg=key)


def test_lighthouse_tree_loads_unchanged_and_gives_the_fixture_config(
    fixture, lighthouse_configs_dir
):
    """Both trees, with the run folder named after the variant as Lighthouse names it."""
    io = fixture["io"]
    overrides = [f"{k}={v}" for k, v in {"seed": io["seed"], **io["overrides"]}.items()]
    for root in (lighthouse_configs_dir, REPO_ROOT / "configs"):
        cfg = load_config(io["model"], "clotho-moment", "clap", overrides, root=root)
        for key, value in io["config"].items():
            if key.endswith("_log_txt_formatter"):
                continue  # added by the training loop, not the loader
            assert cfg[key] == value, (root, key)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_project_config_equals_lighthouses(variant: str, lighthouse_configs_dir):
    ours = REPO_ROOT / "configs" / "model" / f"{variant}.yml"
    assert ours.read_bytes() == (lighthouse_configs_dir / "model" / f"{variant}.yml").read_bytes()
    mine = load_config(variant, "clotho-moment", "clap", root=REPO_ROOT / "configs")
    theirs = load_config(variant, "clotho-moment", "clap", root=lighthouse_configs_dir)
    assert mine == theirs and mine.mr2hd is VARIANTS[variant]


# --------------------------------------------------------------------------- forward


def _assert_outputs(got: dict, expected: dict, keys: list[str]) -> None:
    assert list(_lighthouse_outputs(got)) == keys
    for key in keys:
        if key != "aux_outputs":
            torch.testing.assert_close(got[key], expected[key], atol=ATOL, rtol=RTOL, msg=key)
            continue
        assert len(got[key]) == len(expected[key])
        for i, (mine, theirs) in enumerate(zip(got[key], expected[key], strict=True)):
            assert list(mine) == list(theirs)
            for name in theirs:
                torch.testing.assert_close(
                    mine[name], theirs[name], atol=ATOL, rtol=RTOL, msg=f"aux {i} {name}"
                )


def test_forward_matches_lighthouse_in_every_recorded_call(fixture):
    io = fixture["io"]
    assert _epoch_of(io) is None  # the evaluation call, as evaluate.py makes it
    for name, call in _calls(io).items():
        got = fixture["outputs"][name]
        _assert_outputs(got, call["outputs"], call["output_keys"])
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
    got: dict[str, list] = {}

    def keep(name):
        def hook(_module, inputs, output):
            got.setdefault(name, []).append((inputs, output))

        return hook

    names = [
        "input_vid_proj", "input_txt_proj", "transformer.t2v_encoder",
        "transformer.shared_encoder", "transformer.mr_conv", "transformer.mr_decoder",
    ]  # fmt: skip
    handles = [model.get_submodule(n).register_forward_hook(keep(n)) for n in names]
    model.negative_pass = False  # Lighthouse's hooks did not record the negative pass either
    try:
        _run(model, io, None)
    finally:
        model.negative_pass = True
        for handle in handles:
            handle.remove()
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


def _assert_matches(got, want) -> None:
    assert len(got) == len(want)
    for (gi, gj), (wi, wj) in zip(got, want, strict=True):
        assert torch.equal(gi, wi) and torch.equal(gj, wj), ((gi, gj), (wi, wj))


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    for name, call in _calls(io).items():
        outputs = call["outputs"] if source == "fixture_outputs" else fixture["outputs"][name]
        criterion = build_bundle(io["config"]).criterion
        criterion(outputs, io["targets"])
        _assert_matches(criterion.last_matches.main, call["matcher_indices"])
        want_aux = call.get("aux_matcher_indices", [])
        assert len(criterion.last_matches.aux) == len(want_aux)
        for got, want in zip(criterion.last_matches.aux, want_aux, strict=True):
            _assert_matches(got, want)


def test_every_loss_and_the_weighted_total_match_lighthouse(fixture):
    io = fixture["io"]
    criterion = build_bundle(io["config"]).criterion
    assert criterion.weight_dict == io["weight_dict"]
    for name, call in _calls(io).items():
        losses = criterion(call["outputs"], io["targets"])
        assert set(losses) == set(call["loss_dict"]), name
        for key, want in call["loss_dict"].items():
            assert _isclose(float(losses[key]), want), (name, key, float(losses[key]), want)
        weights = criterion.weight_dict
        total = float(sum(losses[k] * weights[k] for k in losses if k in weights))
        assert _isclose(total, call["total_weighted_loss"]), (name, total)
    # what Lighthouse's evaluation logs: each term weighted (1 without a weight), and the total
    for name, (call_name, record) in _eval_records(io).items():
        meters = record.get("loss_meters")
        if not meters:
            continue
        losses = criterion(_calls(io)[call_name]["outputs"], io["targets"])
        total = float(sum(losses[k] * weights[k] for k in losses if k in weights))
        for key, want in meters.items():
            got = total if key == "loss_overall" else float(losses[key]) * weights.get(key, 1.0)
            assert _isclose(got, want), (name, key, got, want)


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
    assert _isclose(float(losses["loss_saliency"]), expected["loss_hd"])
    for key in LOG_VAR_KEYS:
        assert float(losses[key]) == pytest.approx(expected[key], abs=1e-7)
    assert _isclose(float(criterion.objective(losses)), expected["total"])
    ours = criterion(fixture["outputs"][name], io["targets"])
    got = criterion.objective(ours).item()
    assert _isclose(got, expected["total"], rel_tol=RTOL)
    with pytest.raises(KeyError, match="hd_log_var"):
        criterion.objective(criterion(call["outputs"], io["targets"]))


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward pass, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    criterion = build_bundle(io["config"]).criterion
    for name, call in _calls(io).items():
        losses = criterion(fixture["outputs"][name], io["targets"])
        for key, want in call["loss_dict"].items():
            got = float(losses[key])
            assert _isclose(got, want, rel_tol=RTOL), (name, key, got, want)


def test_device_assignment_reproduces_the_fixture_matches_and_losses(fixture):
    """The fast path's matching (targets laid out as on the device, assignment solved there)."""
    io = fixture["io"]
    criterion = build_bundle({**io["config"], "assignment": "device"}).criterion
    frames = io["inputs"]["src_vid"].shape[1]
    losses = criterion(io["outputs"], device_targets(io["targets"], frames))
    for key, want in io["loss_dict"].items():
        assert _isclose(float(losses[key]), want), (key, float(losses[key]), want)
    _assert_matches(criterion.last_matches.main, io["matcher_indices"])


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
    metas = _metas(io)
    records = _eval_records(io)
    assert "standalone_evaluate" in records
    for record_name, (call_name, expected) in records.items():
        outputs = _calls(io)[call_name]["outputs"]
        postprocessor = build_bundle(io["config"]).postprocessor
        assert postprocessor.postprocessor.settings() == expected["postprocessor_settings"]
        assert outputs_to_predictions(outputs, metas) == expected["before_postprocess"]
        predictions = postprocessor(outputs, metas)
        assert predictions == expected["predictions"], record_name
        assert expected["jsonl_text"].splitlines() == [json.dumps(p) for p in predictions]
        assert eval_submission(predictions, metas) == expected["metrics"], record_name
    # the predictions file is evaluate.py's: the evaluation call (epoch_i=None)
    lines = _sibling(fixture["path"], "_preds.jsonl").read_text().splitlines()
    assert lines == records["standalone_evaluate"][1]["jsonl_text"].splitlines()


def test_model_predictions_match_lighthouse(fixture):
    """Our forward passes through the post-processor: the same windows in the same order;
    scores to one unit of their 4th decimal (the outputs may differ by float rounding)."""
    io = fixture["io"]
    metas = _metas(io)
    for record_name, (call_name, expected) in _eval_records(io).items():
        postprocessor = build_bundle(io["config"]).postprocessor
        predictions = postprocessor(fixture["outputs"][call_name], metas)
        for got, want in zip(predictions, expected["predictions"], strict=True):
            windows, want_windows = got.pop("pred_relevant_windows"), want["pred_relevant_windows"]
            assert got == {k: v for k, v in want.items() if k != "pred_relevant_windows"}
            assert [w[:2] for w in windows] == [w[:2] for w in want_windows], record_name
            assert [w[2] for w in windows] == pytest.approx(
                [w[2] for w in want_windows], abs=1.5e-4
            )
        predictions = postprocessor(fixture["outputs"][call_name], metas)
        assert eval_submission(predictions, metas) == expected["metrics"], record_name


# --------------------------------------------------------------------------- data


def test_dataset_builds_the_fixture_batch_from_raw_features(fixture, tmp_path):
    """The project's dataset and collate, fed the raw arrays and jsonl lines Lighthouse read,
    give its inputs and targets (Python's random seeded as the fixture was)."""
    io = fixture["io"]
    dataset = build_from_fixture(io, tmp_path)
    random.seed(io["seed"])
    metas, inputs, targets = collate([dataset[i] for i in range(len(dataset))])
    assert [m["qid"] for m in metas] == [m["qid"] for m in io["meta"]]
    if "meta_after_dataset" in io:
        windows = [m["relevant_windows"] for m in metas]
        assert windows == [m["relevant_windows"] for m in io["meta_after_dataset"]]
    for key, want in io["inputs"].items():
        assert inputs[key].dtype == want.dtype and inputs[key].shape == want.shape, key
        torch.testing.assert_close(inputs[key], want, atol=1e-6, rtol=0, msg=key)
    for got, want in zip(targets["span_labels"], io["targets"]["span_labels"], strict=True):
        assert got["spans"].dtype == want["spans"].dtype
        assert torch.equal(got["spans"], want["spans"]), (got["spans"], want["spans"])
    for key, want in io["targets"].items():
        if key != "span_labels":
            got = targets[key]
            assert got.dtype == want.dtype and torch.equal(got, want), (key, got, want)


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


def _tiny_batch(batch: int = 3, len_v: int = 9, len_t: int = 5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    vid_len = torch.tensor([len_v, len_v - 3, 2][:batch])
    txt_len = torch.tensor([2, len_t, 1][:batch])
    vid_mask = (torch.arange(len_v) < vid_len[:, None]).float()
    txt_mask = (torch.arange(len_t) < txt_len[:, None]).float()
    return dict(
        src_txt=torch.randn(batch, len_t, 16, generator=g) * txt_mask[..., None],
        src_txt_mask=txt_mask,
        src_vid=torch.randn(batch, len_v, 2, generator=g) * vid_mask[..., None],
        src_vid_mask=vid_mask,
        src_aud=torch.randn(batch, len_v, 12, generator=g) * vid_mask[..., None],
        src_aud_mask=vid_mask,
    )


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
    losses = criterion(model(**_tiny_batch()), _tiny_targets())
    total = criterion.objective(losses)
    assert total.shape == () and torch.isfinite(total)
    total.backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == {
        "txt_position_embed.position_embeddings.weight",
        "txt_position_embed.LayerNorm.weight",
        "txt_position_embed.LayerNorm.bias",
    }
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
            out = model(**_tiny_batch(), epoch_i=epoch)
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
    inputs = _tiny_batch()
    inputs["src_txt"] = inputs["src_txt"][:, :0]
    inputs["src_txt_mask"] = inputs["src_txt_mask"][:, :0]
    with pytest.raises(ValueError, match="at least one text token"):
        model(**inputs)
