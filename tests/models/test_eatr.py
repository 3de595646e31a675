"""EaTR: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``eatr*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
checked against its checkpoint (same stem without ``_io``) and predictions file, so held-back
fixtures are covered without naming them here. Expected values always come from the fixtures.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lighthouse_audio.config import load_config
from lighthouse_audio.data.collate import collate
from lighthouse_audio.evaluation.metrics import eval_submission
from lighthouse_audio.models.eatr import EaTR, build, build_model
from lighthouse_audio.models.eatr_criterion import EaTRCriterion
from lighthouse_audio.models.eatr_events import HungarianEventMatcher, pseudo_event_spans
from lighthouse_audio.models.postprocess import outputs_to_predictions
from lighthouse_audio.registry import MODELS
from lighthouse_audio.spans import generalized_temporal_iou, span_cxw_to_xx
from tests.conftest import REPO_ROOT, model_fixture_files
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets

IO_FILES = model_fixture_files("eatr*_io.pt")
LISTINGS = model_fixture_files("eatr*_state_dict.txt")
ATOL = RTOL = 1e-4  # the fixtures' README §9; observed <= 1.7e-6 on the public fixture
LOSS_RTOL = 1e-5
TENSOR_OUTPUTS = ("pred_logits", "pred_spans", "pred_event_spans", "saliency_scores")

pytestmark = pytest.mark.skipif(not IO_FILES, reason="no eatr*_io.pt fixtures found")


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _sibling(io_path: Path, suffix: str) -> Path:
    return io_path.with_name(io_path.name.replace("_io.pt", suffix))


@pytest.fixture(params=IO_FILES, ids=_ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus its outputs."""
    io = torch.load(request.param, weights_only=True)
    ckpt = torch.load(_sibling(request.param, ".ckpt"), weights_only=False)  # `opt`: EasyDict
    model = build_model(io["config"])
    model.load_state_dict(ckpt["model"], strict=True)  # copies: the shared storage is untouched
    model.eval()
    with torch.no_grad():
        outputs = model(**io["inputs"])
    return {"path": request.param, "io": io, "ckpt": ckpt, "model": model, "outputs": outputs}


def _layout(state: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in state.items()]


def _isclose(got: float, want: float, rel_tol: float = LOSS_RTOL) -> bool:
    return math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-7)


def _metas(io: dict) -> list[dict]:
    return [dict(meta) for meta in io["meta"]]


# --------------------------------------------------------------------------- weights and config


def test_registered_and_built_through_the_registry(fixture):
    assert "eatr" in MODELS.names()
    bundle = MODELS.get("eatr")(fixture["io"]["config"])
    assert isinstance(bundle.model, EaTR)
    assert isinstance(bundle.criterion, EaTRCriterion)
    assert bundle.criterion.saliency_terms == ("hinge",)


def test_state_dict_layout_matches_checkpoint(fixture):
    model = build_model(fixture["io"]["config"])
    assert _layout(model.state_dict()) == _layout(fixture["ckpt"]["model"])
    assert list(fixture["ckpt"]) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]


def test_our_state_dict_loads_back_strictly(fixture):
    """Both ways: what we save has exactly Lighthouse's keys, so Lighthouse loads it strictly,
    and it loads back into a fresh model giving the same outputs."""
    io, model = fixture["io"], fixture["model"]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert _layout(state) == _layout(fixture["ckpt"]["model"])
    again = build_model(io["config"])
    again.load_state_dict(state, strict=True)
    again.eval()
    with torch.no_grad():
        out = again(**io["inputs"])
    for key in TENSOR_OUTPUTS:
        assert torch.equal(out[key], fixture["outputs"][key]), key


@pytest.mark.parametrize("listing", LISTINGS, ids=_ids(LISTINGS))
def test_default_config_layout_matches_listing(listing: Path, lighthouse_configs_dir):
    """The listing is of Lighthouse's default config (768-wide CLAP inputs), built from
    Lighthouse's own YAML tree."""
    text = listing.read_text()
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
    opt = load_config("eatr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    model = build_model(opt)
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
        for param in model.parameters():  # shared heads once, at their first name
            param.add_(torch.randn(param.shape, generator=noise) * io["perturb_std"])
    sharing = io.get("weight_sharing") or {}
    windows = {key for group in sharing.get("groups", []) for key in group["keys"][1:]}
    state = model.state_dict()
    compared = [key for key in ckpt["model"] if key not in windows]
    assert len(compared) >= len(ckpt["model"]) - len(windows) > 0
    for key in compared:
        torch.testing.assert_close(state[key], ckpt["model"][key], atol=1e-7, rtol=0, msg=key)


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
    io = fixture["io"]
    overrides = [f"{k}={v}" for k, v in {"seed": io["seed"], **io["overrides"]}.items()]
    for root in (lighthouse_configs_dir, REPO_ROOT / "configs"):
        cfg = load_config("eatr", "clotho-moment", "clap", overrides, root=root)
        for key, value in io["config"].items():
            if key.endswith("_log_txt_formatter"):
                continue  # added by the training loop, not the loader
            assert cfg[key] == value, (root, key)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    ours = REPO_ROOT / "configs" / "model" / "eatr.yml"
    assert ours.read_bytes() == (lighthouse_configs_dir / "model" / "eatr.yml").read_bytes()
    mine = load_config("eatr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    theirs = load_config("eatr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    assert mine == theirs


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    io, out = fixture["io"], fixture["outputs"]
    expected = io["outputs"]
    assert list(out) == io["output_keys"]
    for key in io["output_keys"]:
        if key == "pseudo_event_spans":
            # boundary indices / valid length: exact arithmetic, so exact equality
            assert len(out[key]) == len(expected[key])
            for i, (got, want) in enumerate(zip(out[key], expected[key], strict=True)):
                assert got.dtype == want.dtype and torch.equal(got, want), (i, got, want)
        elif key == "aux_outputs":
            assert len(out[key]) == len(expected[key])
            for i, (got, want) in enumerate(zip(out[key], expected[key], strict=True)):
                assert list(got) == list(want)
                for name in want:
                    torch.testing.assert_close(
                        got[name], want[name], atol=ATOL, rtol=RTOL, msg=f"aux {i} {name}"
                    )
        else:
            torch.testing.assert_close(out[key], expected[key], atol=ATOL, rtol=RTOL, msg=key)


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
    got: dict[str, object] = {}

    def keep(name):
        def hook(_module, _inputs, output):
            got[name] = output

        return hook

    modules = {
        "input_vid_proj": model.input_vid_proj,
        "input_txt_proj": model.input_txt_proj,
        "position_embed": model.position_embed,
        "transformer.encoder": model.transformer.encoder,
        "transformer.decoder.slot_atten": model.transformer.decoder.slot_atten,
        "transformer.decoder": model.transformer.decoder,
    }
    handles = [module.register_forward_hook(keep(name)) for name, module in modules.items()]
    try:
        with torch.no_grad():
            model(**io["inputs"])
    finally:
        for handle in handles:
            handle.remove()
    expected = io["intermediates"]
    assert set(expected) <= set(modules)
    for name, calls in expected.items():
        assert len(calls) == 1, name
        want = calls[0]
        if name == "transformer.encoder":  # Lighthouse's encoder is sequence-first [L, B, d]
            want = want.transpose(0, 1)
        if name == "transformer.decoder":  # [hs [1 + layers, B, Q, d], refs [layers, B, Q, 2]]
            assert len(got[name]) == len(want) == 2
            for i, (mine, theirs) in enumerate(zip(got[name], want, strict=True)):
                torch.testing.assert_close(mine, theirs, atol=ATOL, rtol=RTOL, msg=f"{name} {i}")
            continue
        torch.testing.assert_close(got[name], want, atol=ATOL, rtol=RTOL, msg=name)


# --------------------------------------------------------------------------- matchers and losses


def _assert_matches(got, want) -> None:
    assert len(got) == len(want)
    for (gi, gj), (wi, wj) in zip(got, want, strict=True):
        assert torch.equal(gi, wi) and torch.equal(gj, wj), ((gi, gj), (wi, wj))


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_and_event_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    outputs = io["outputs"] if source == "fixture_outputs" else fixture["outputs"]
    criterion = build(io["config"]).criterion
    criterion(outputs, io["targets"])
    _assert_matches(criterion.last_matches.main, io["matcher_indices"])
    want_aux = io.get("aux_matcher_indices", [])
    assert len(criterion.last_matches.aux) == len(want_aux)
    for got, want in zip(criterion.last_matches.aux, want_aux, strict=True):
        _assert_matches(got, want)
    if source == "fixture_outputs":
        _assert_matches(criterion.last_event_matches, io["event_matcher_indices"])
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
    criterion = build(io["config"]).criterion
    assert criterion.weight_dict == io["weight_dict"]
    assert list(criterion.weight_dict) == list(io["weight_dict"])
    losses = criterion(io["outputs"], io["targets"])
    assert list(losses) == list(io["loss_dict"])  # Lighthouse's order (the logs keep it)
    for key, want in io["loss_dict"].items():
        assert _isclose(float(losses[key]), want), (key, float(losses[key]), want)
    weights = criterion.weight_dict
    total = float(sum(losses[k] * weights[k] for k in losses if k in weights))
    assert _isclose(total, io["total_weighted_loss"]), (total, io["total_weighted_loss"])
    if "training_loss" in io:
        assert io["training_loss"]["computed_from"] == "outputs"
        assert _isclose(total, io["training_loss"]["total"])
    # what Lighthouse's evaluation logs: each term weighted (1 without a weight), and the total
    meters = io.get("eval", {}).get("standalone_evaluate", {}).get("loss_meters")
    if meters:
        for key, want in meters.items():
            got = total if key == "loss_overall" else float(losses[key]) * weights.get(key, 1.0)
            assert _isclose(got, want), (key, got, want)


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward pass, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    losses = build(io["config"]).criterion(fixture["outputs"], io["targets"])
    for key, want in io["loss_dict"].items():
        assert _isclose(float(losses[key]), want, rel_tol=RTOL), (key, float(losses[key]), want)


def test_fast_path_reproduces_the_fixture_losses(fixture):
    """--fast (device-resident batches padded to the batch maximum, the assignment on the
    device): targets laid out as on the device give Lighthouse's matches and losses."""
    io = fixture["io"]
    config = {**io["config"], "assignment": "device"}
    criterion = build(config).criterion
    frames = io["inputs"]["src_vid"].shape[1]
    losses = criterion(io["outputs"], device_targets(io["targets"], frames))
    for key, want in io["loss_dict"].items():
        assert _isclose(float(losses[key]), want), (key, float(losses[key]), want)
    _assert_matches(criterion.last_matches.main, io["matcher_indices"])
    _assert_matches(criterion.last_event_matches, io["event_matcher_indices"])


# --------------------------------------------------------------------------- predictions


def _standalone(io: dict) -> dict:
    return io["eval"]["standalone_evaluate"]


def test_postprocessed_predictions_and_metrics_match_lighthouse(fixture):
    io = fixture["io"]
    expected = _standalone(io)
    postprocessor = build(io["config"]).postprocessor
    assert postprocessor.postprocessor.settings() == expected["postprocessor_settings"]
    metas = _metas(io)
    assert outputs_to_predictions(io["outputs"], metas) == expected["before_postprocess"]
    predictions = postprocessor(io["outputs"], metas)
    assert predictions == expected["predictions"]
    # the predictions file, line for line as Lighthouse wrote it
    lines = _sibling(fixture["path"], "_preds.jsonl").read_text().splitlines()
    assert lines == [json.dumps(p) for p in predictions]
    assert expected["jsonl_text"].splitlines() == lines
    assert eval_submission(predictions, metas) == expected["metrics"]


def test_model_predictions_match_lighthouse(fixture):
    """Our forward pass through the post-processor: the same windows in the same order; scores
    to one unit of their 4th decimal (the outputs may differ by float rounding)."""
    io = fixture["io"]
    expected = _standalone(io)["predictions"]
    metas = _metas(io)
    predictions = build(io["config"]).postprocessor(fixture["outputs"], metas)
    for got, want in zip(predictions, expected, strict=True):
        assert {k: v for k, v in got.items() if k != "pred_relevant_windows"} == {
            k: v for k, v in want.items() if k != "pred_relevant_windows"
        }
        assert [w[:2] for w in got["pred_relevant_windows"]] == [
            w[:2] for w in want["pred_relevant_windows"]
        ]
        assert [w[2] for w in got["pred_relevant_windows"]] == pytest.approx(
            [w[2] for w in want["pred_relevant_windows"]], abs=1.5e-4
        )
    assert eval_submission(predictions, metas) == _standalone(io)["metrics"]


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
    want_targets = io.get("targets")
    if not want_targets:
        return
    for got, want in zip(targets["span_labels"], want_targets["span_labels"], strict=True):
        assert got["spans"].dtype == want["spans"].dtype
        assert torch.equal(got["spans"], want["spans"]), (got["spans"], want["spans"])
    for key, want in want_targets.items():
        if key != "span_labels":
            got = targets[key]
            assert got.dtype == want.dtype and torch.equal(got, want), (key, got, want)


# --------------------------------------------------------------------------- invariants

TINY = dict(txt_dim=16, vid_dim=2 + 12, hidden_dim=32, nheads=4, enc_layers=1, dec_layers=2,
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
    out = model(**_tiny_batch())
    assert out["pred_logits"].shape == out["pred_spans"].shape == (3, 5, 2)
    assert out["pred_event_spans"].shape == (3, 5, 2)
    assert out["saliency_scores"].shape == (3, 9)
    assert len(out["aux_outputs"]) == 1 and len(out["pseudo_event_spans"]) == 3
    valid = _tiny_batch()["src_vid_mask"]
    total = out["pred_logits"].sum() + out["pred_spans"].sum() + out["pred_event_spans"].sum()
    total = total + (out["saliency_scores"] * valid).sum()
    total = total + sum(a["pred_logits"].sum() + a["pred_spans"].sum() for a in out["aux_outputs"])
    total.backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == {
        "txt_position_embed.position_embeddings.weight",
        "txt_position_embed.LayerNorm.weight",
        "txt_position_embed.LayerNorm.bias",
    }
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_tiny_training_step_through_the_criterion():
    opt = _default_opt(hidden_dim=32, nheads=4, enc_layers=1, dim_feedforward=32,
                       num_queries=5, a_feat_dim=12, t_feat_dim=16)  # fmt: skip
    torch.manual_seed(0)
    model, criterion, _ = build(opt)
    losses = criterion(model.train()(**_tiny_batch()), _tiny_targets())
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
        out = model.eval()(**_tiny_batch())
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
        assert EaTR(**{**TINY, "dec_layers": 1}).eval()(**_tiny_batch())["aux_outputs"] == []
        assert "aux_outputs" not in EaTR(**TINY, aux_loss=False).eval()(**_tiny_batch())


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
    inputs = _tiny_batch()
    inputs["src_txt"] = inputs["src_txt"][:, :0]
    inputs["src_txt_mask"] = inputs["src_txt_mask"][:, :0]
    with pytest.raises(ValueError, match="at least one text token"):
        model(**inputs)
