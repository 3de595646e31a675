"""TR-DETR: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``tr_detr*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
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
import torch.nn.functional as F

from lighthouse_audio.config import load_config
from lighthouse_audio.data.collate import collate
from lighthouse_audio.evaluation.metrics import eval_submission
from lighthouse_audio.models.postprocess import outputs_to_predictions
from lighthouse_audio.models.tr_detr import TEXT_MASK_KEY, TRDETR, build, build_model
from lighthouse_audio.models.tr_detr_criterion import (
    TRDETRCriterion,
    ctc_loss,
    sigmoid_focal_loss,
    vtc_loss,
)
from lighthouse_audio.registry import MODELS
from tests.conftest import REPO_ROOT, model_fixture_files
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets

IO_FILES = model_fixture_files("tr_detr*_io.pt")
LISTINGS = model_fixture_files("tr_detr*_state_dict.txt")
ATOL = RTOL = 1e-4  # the fixtures' README §9; observed <= 4e-6 on the public fixture
LOSS_RTOL = 1e-5
ALIGNMENT_KEYS = ("loss_vtc", "loss_ctc")  # the training objective's extra terms (train.py)

pytestmark = pytest.mark.skipif(not IO_FILES, reason="no tr_detr*_io.pt fixtures found")


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


def _fixture_outputs(io: dict) -> dict:
    """Lighthouse's outputs plus the text mask our criterion reads (Lighthouse's train.py takes
    it from the model inputs)."""
    return {**io["outputs"], TEXT_MASK_KEY: io["inputs"]["src_txt_mask"]}


def _layout(state: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in state.items()]


def _isclose(got: float, want: float, rel_tol: float = LOSS_RTOL) -> bool:
    return math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-7)


def _metas(io: dict) -> list[dict]:
    return [dict(meta) for meta in io["meta"]]


# --------------------------------------------------------------------------- weights and config


def test_registered_and_built_through_the_registry(fixture):
    assert "tr_detr" in MODELS.names()
    bundle = MODELS.get("tr_detr")(fixture["io"]["config"])
    assert isinstance(bundle.model, TRDETR)
    assert isinstance(bundle.criterion, TRDETRCriterion)


def test_state_dict_layout_matches_checkpoint(fixture):
    model = build_model(fixture["io"]["config"])
    assert _layout(model.state_dict()) == _layout(fixture["ckpt"]["model"])
    assert list(fixture["ckpt"]) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]


def test_our_state_dict_loads_back_strictly(fixture):
    """Both ways: what we save is exactly the key set Lighthouse's model loads strictly."""
    state = {k: v.clone() for k, v in fixture["model"].state_dict().items()}
    assert set(state) == set(fixture["ckpt"]["model"])
    fresh = build_model(fixture["io"]["config"])
    fresh.load_state_dict(state, strict=True)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())


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
    opt = load_config("tr_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
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
        cfg = load_config("tr_detr", "clotho-moment", "clap", overrides, root=root)
        for key, value in io["config"].items():
            if key.endswith("_log_txt_formatter"):
                continue  # added by the training loop, not the loader
            assert cfg[key] == value, (root, key)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    ours = REPO_ROOT / "configs" / "model" / "tr_detr.yml"
    assert ours.read_bytes() == (lighthouse_configs_dir / "model" / "tr_detr.yml").read_bytes()
    mine = load_config("tr_detr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    theirs = load_config("tr_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    assert mine == theirs


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    io, out = fixture["io"], fixture["outputs"]
    expected = io["outputs"]
    # Lighthouse's keys in its order, then only the text mask the CTC loss needs
    assert list(out) == [*io["output_keys"], TEXT_MASK_KEY]
    assert torch.equal(out[TEXT_MASK_KEY], io["inputs"]["src_txt_mask"])
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
    """Pin where a divergence starts: projections, fusion, T2V, both encoder passes (the
    second is HD2MR's), decoder states and references, MR2HD's GRU summary."""
    io, model = fixture["io"], fixture["model"]
    got: dict[str, list] = {}

    def keep(name):
        def hook(_module, _inputs, output):
            got.setdefault(name, []).append(output)

        return hook

    modules = {
        "input_vid_proj": model.input_vid_proj,
        "input_txt_proj": model.input_txt_proj,
        "fuser": model.fuser,
        "transformer.t2v_encoder": model.transformer.t2v_encoder,
        "transformer.encoder": model.transformer.encoder,
        "transformer.decoder": model.transformer.decoder,
        "gru_extractor": model.gru_extractor,
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
    num_frames = io["inputs"]["src_vid"].shape[1]
    for name, calls in expected.items():
        assert len(got[name]) == len(calls), name
        for i, (mine, want) in enumerate(zip(got[name], calls, strict=True)):
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


def _assert_matches(got, want) -> None:
    assert len(got) == len(want)
    for (gi, gj), (wi, wj) in zip(got, want, strict=True):
        assert torch.equal(gi, wi) and torch.equal(gj, wj), ((gi, gj), (wi, wj))


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    outputs = _fixture_outputs(io) if source == "fixture_outputs" else fixture["outputs"]
    criterion = build(io["config"]).criterion
    criterion(outputs, io["targets"])
    _assert_matches(criterion.last_matches.main, io["matcher_indices"])
    want_aux = io.get("aux_matcher_indices", [])
    assert len(criterion.last_matches.aux) == len(want_aux)
    for got, want in zip(criterion.last_matches.aux, want_aux, strict=True):
        _assert_matches(got, want)


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
    for key, want in io["loss_dict"].items():
        assert _isclose(float(losses[key]), want), (key, float(losses[key]), want)
    # Lighthouse's criterion sum (also its eval loss_overall), then train.py's objective
    criterion_sum = float(sum(losses[k] * io["weight_dict"][k] for k in io["weight_dict"]))
    assert _isclose(criterion_sum, io["total_weighted_loss"])
    assert _isclose(criterion_sum, training["weighted_criterion_sum"])
    assert training["computed_from"] == "outputs"
    assert _isclose(float(losses["loss_vtc"]), training["loss_vtc"])
    assert _isclose(float(losses["loss_ctc"]), training["loss_ctc"])
    objective = float(sum(losses[k] * weights[k] for k in losses if k in weights))
    assert _isclose(objective, training["total"]), (objective, training["total"])
    # what Lighthouse's evaluation logs: each criterion term weighted (1 without a weight)
    meters = io.get("eval", {}).get("standalone_evaluate", {}).get("loss_meters")
    if meters:
        for key, want in meters.items():
            got = (
                criterion_sum if key == "loss_overall" else float(losses[key]) * weights.get(key, 1)
            )
            assert _isclose(got, want), (key, got, want)


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward pass, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    losses = build(io["config"]).criterion(fixture["outputs"], io["targets"])
    training = io["training_loss"]
    expected = {
        **io["loss_dict"],
        "loss_vtc": training["loss_vtc"],
        "loss_ctc": training["loss_ctc"],
    }
    for key, want in expected.items():
        assert _isclose(float(losses[key]), want, rel_tol=RTOL), (key, float(losses[key]), want)


def test_fast_path_targets_reproduce_the_fixture_losses(fixture):
    """The fixture's targets laid out as on the device (padded spans, the assignment solved on
    the device): the same matches and every loss, VTC/CTC included."""
    io = fixture["io"]
    config = {**io["config"], "assignment": "device"}
    frames = io["inputs"]["src_vid"].shape[1]
    criterion = build(config).criterion
    losses = criterion(_fixture_outputs(io), device_targets(io["targets"], frames))
    training = io["training_loss"]
    expected = {
        **io["loss_dict"],
        "loss_vtc": training["loss_vtc"],
        "loss_ctc": training["loss_ctc"],
    }
    for key, want in expected.items():
        assert _isclose(float(losses[key]), want), (key, float(losses[key]), want)
    _assert_matches(criterion.last_matches.main, io["matcher_indices"])


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
    give its inputs and targets, ``src_pos_mask`` included (Python's random seeded as the
    fixture was)."""
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
    want_targets = io["targets"]
    assert "src_pos_mask" in want_targets
    for got, want in zip(targets["span_labels"], want_targets["span_labels"], strict=True):
        assert got["spans"].dtype == want["spans"].dtype
        assert torch.equal(got["spans"], want["spans"]), (got["spans"], want["spans"])
    for key, want in want_targets.items():
        if key != "span_labels":
            got = targets[key]
            assert got.dtype == want.dtype and torch.equal(got, want), (key, got, want)


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
    model = TRDETR(**TINY).train()
    inputs = _tiny_batch()
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
    assert unused == {
        "txt_position_embed.position_embeddings.weight",
        "txt_position_embed.LayerNorm.weight",
        "txt_position_embed.LayerNorm.bias",
    }
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
        assert TRDETR(**{**TINY, "dec_layers": 1}).eval()(**_tiny_batch())["aux_outputs"] == []
        assert "aux_outputs" not in TRDETR(**TINY, aux_loss=False).eval()(**_tiny_batch())


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
    inputs = _tiny_batch()
    inputs["src_txt"] = inputs["src_txt"][:, :0]
    inputs["src_txt_mask"] = inputs["src_txt_mask"][:, :0]
    with pytest.raises(ValueError, match="at least one text token"):
        model(**inputs)
