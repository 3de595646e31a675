"""Moment-DETR: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``moment_detr*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``)
is checked against its checkpoint (same stem without ``_io``) and predictions file, so held-back
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
from lighthouse_audio.models.criterion import SetCriterion
from lighthouse_audio.models.matcher import HungarianMatcher
from lighthouse_audio.models.moment_detr import MomentDETR, build, build_model
from lighthouse_audio.models.postprocess import outputs_to_predictions
from lighthouse_audio.registry import MODELS
from tests.conftest import REPO_ROOT, model_fixture_files
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets, static_inputs

IO_FILES = model_fixture_files("moment_detr*_io.pt")
LISTINGS = model_fixture_files("moment_detr*_state_dict.txt")
ATOL = RTOL = 1e-4  # the fixtures' README §9; observed <= 1.1e-6 on the public fixture
LOSS_RTOL = 1e-5

pytestmark = pytest.mark.skipif(not IO_FILES, reason="no moment_detr*_io.pt fixtures found")


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
    assert "moment_detr" in MODELS.names()
    bundle = MODELS.get("moment_detr")(fixture["io"]["config"])
    assert isinstance(bundle.model, MomentDETR)
    assert bundle.criterion.saliency_terms == ("hinge",)


def test_state_dict_layout_matches_checkpoint(fixture):
    model = build_model(fixture["io"]["config"])
    assert _layout(model.state_dict()) == _layout(fixture["ckpt"]["model"])
    assert list(fixture["ckpt"]) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]


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
    opt = load_config("moment_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
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
    io = fixture["io"]
    overrides = [f"{k}={v}" for k, v in {"seed": io["seed"], **io["overrides"]}.items()]
    for root in (lighthouse_configs_dir, REPO_ROOT / "configs"):
        cfg = load_config("moment_detr", "clotho-moment", "clap", overrides, root=root)
        for key, value in io["config"].items():
            if key.endswith("_log_txt_formatter"):
                continue  # added by the training loop, not the loader
            assert cfg[key] == value, (root, key)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    ours = REPO_ROOT / "configs" / "model" / "moment_detr.yml"
    assert ours.read_bytes() == (lighthouse_configs_dir / "model" / "moment_detr.yml").read_bytes()
    mine = load_config("moment_detr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    theirs = load_config("moment_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    assert mine == theirs


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    io, out = fixture["io"], fixture["outputs"]
    expected = io["outputs"]
    assert list(out) == io["output_keys"]
    for key in io["output_keys"]:
        if key != "aux_outputs":
            torch.testing.assert_close(out[key], expected[key], atol=ATOL, rtol=RTOL, msg=key)
            continue
        assert len(out[key]) == len(expected[key])
        for i, (got, want) in enumerate(zip(out[key], expected[key], strict=True)):
            assert list(got) == list(want)
            for name in want:
                torch.testing.assert_close(
                    got[name], want[name], atol=ATOL, rtol=RTOL, msg=f"aux {i} {name}"
                )


def test_intermediates_match_lighthouse(fixture):
    """Pin where a divergence starts: projections, positions, encoder memory, decoder states."""
    io, model = fixture["io"], fixture["model"]
    got: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(_module, _inputs, output):
            got[name] = output

        return hook

    modules = {
        "input_vid_proj": model.input_vid_proj,
        "input_txt_proj": model.input_txt_proj,
        "position_embed": model.position_embed,
        "transformer.encoder": model.transformer.encoder,
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
    # Lighthouse's encoder is sequence-first [L, B, d] and its decoder [layers, Q, B, d].
    layout = {"transformer.encoder": (0, 1), "transformer.decoder": (1, 2)}
    for name, calls in expected.items():
        assert len(calls) == 1, name
        want = calls[0]
        if name in layout:
            want = want.transpose(*layout[name])
        torch.testing.assert_close(got[name], want, atol=ATOL, rtol=RTOL, msg=name)


# --------------------------------------------------------------------------- matcher and losses


def _assert_matches(got, want) -> None:
    assert len(got) == len(want)
    for (gi, gj), (wi, wj) in zip(got, want, strict=True):
        assert torch.equal(gi, wi) and torch.equal(gj, wj), ((gi, gj), (wi, wj))


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    outputs = io["outputs"] if source == "fixture_outputs" else fixture["outputs"]
    criterion = build(io["config"]).criterion
    criterion(outputs, io["targets"])
    _assert_matches(criterion.last_matches.main, io["matcher_indices"])
    want_aux = io.get("aux_matcher_indices", [])
    assert len(criterion.last_matches.aux) == len(want_aux)
    for got, want in zip(criterion.last_matches.aux, want_aux, strict=True):
        _assert_matches(got, want)


def test_every_loss_and_the_weighted_total_match_lighthouse(fixture):
    io = fixture["io"]
    criterion = build(io["config"]).criterion
    assert criterion.weight_dict == io["weight_dict"]
    losses = criterion(io["outputs"], io["targets"])
    assert set(losses) == set(io["loss_dict"])
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
    assert _isclose(got, io["loss_dict"]["loss_saliency"])


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
    for key, want in io["loss_dict"].items():
        assert _isclose(float(losses[key]), want, rel_tol=RTOL), (key, float(losses[key]), want)
    _assert_matches(criterion.last_matches.main, io["matcher_indices"])


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


def test_tiny_forward_backward_reaches_every_used_parameter():
    torch.manual_seed(0)
    model = MomentDETR(**TINY).train()
    out = model(**_tiny_batch())
    assert out["pred_logits"].shape == out["pred_spans"].shape == (3, 5, 2)
    assert out["saliency_scores"].shape == (3, 9)
    assert len(out["aux_outputs"]) == 1
    valid = _tiny_batch()["src_vid_mask"]
    total = out["pred_logits"].sum() + out["pred_spans"].sum()
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


def test_padded_content_does_not_change_predictions():
    torch.manual_seed(0)
    model = MomentDETR(**TINY).eval()
    inputs = _tiny_batch()
    noisy = dict(inputs)
    vid_pad = inputs["src_vid_mask"][..., None] == 0
    txt_pad = inputs["src_txt_mask"][..., None] == 0
    noisy["src_aud"] = torch.where(vid_pad, 5.0, inputs["src_aud"])
    noisy["src_vid"] = torch.where(vid_pad, -3.0, inputs["src_vid"])
    noisy["src_txt"] = torch.where(txt_pad, 7.0, inputs["src_txt"])
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
        assert MomentDETR(**{**TINY, "dec_layers": 1}).eval()(**_tiny_batch())["aux_outputs"] == []
        assert "aux_outputs" not in MomentDETR(**TINY, aux_loss=False).eval()(**_tiny_batch())


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
    inputs = _tiny_batch()
    inputs["src_txt"] = inputs["src_txt"][:, :0]
    inputs["src_txt_mask"] = inputs["src_txt_mask"][:, :0]
    with pytest.raises(ValueError, match="at least one text token"):
        model(**inputs)


def test_saliency_terms_are_checked():
    with pytest.raises(ValueError, match="saliency_terms"):
        SetCriterion(HungarianMatcher(), {}, 0.1, ["saliency"], saliency_terms=["margin"])
    with pytest.raises(ValueError, match="saliency_terms"):
        SetCriterion(HungarianMatcher(), {}, 0.1, ["saliency"], saliency_terms=[])
    order = SetCriterion(HungarianMatcher(), {}, 0.1, ["saliency"],
                         saliency_terms=["negative_pair", "hinge"])  # fmt: skip
    assert order.saliency_terms == ("hinge", "negative_pair")  # Lighthouse's order of addition
