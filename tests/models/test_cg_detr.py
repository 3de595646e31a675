"""CG-DETR: Lighthouse checkpoint compatibility and parity, plus invariants.

Every ``cg_detr*_io.pt`` in the model-fixture folder (``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``) is
checked against its checkpoint (same stem without ``_io``) and predictions file, so held-back
fixtures are covered without naming them here. Both forward calls are checked: the evaluation
call (``io["outputs"]``, no targets) and the training call with targets
(``io["extra_calls"]["train_with_targets"]``, the source of the training objective). Expected
values always come from the fixtures.
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
from lighthouse_audio.data.dataset import MomentDataset
from lighthouse_audio.data.device_split import DeviceSplit
from lighthouse_audio.evaluation.metrics import eval_submission
from lighthouse_audio.models.cg_detr import CGDETR, build, build_model
from lighthouse_audio.models.cg_detr_criterion import CGDETRCriterion
from lighthouse_audio.models.postprocess import outputs_to_predictions
from lighthouse_audio.models.training_inputs import dataset_options, training_inputs
from lighthouse_audio.registry import MODELS
from tests.conftest import REPO_ROOT, model_fixture_files
from tests.data.test_dataset_parity import build_from_fixture
from tests.engine.test_fast_path import device_targets

IO_FILES = model_fixture_files("cg_detr*_io.pt")
LISTINGS = model_fixture_files("cg_detr*_state_dict.txt")
ATOL = RTOL = 1e-4  # the fixtures' README §9; observed <= 7.3e-5 on the public fixture
LOSS_RTOL = 1e-5
TRAIN_CALL = "train_with_targets"

pytestmark = pytest.mark.skipif(not IO_FILES, reason="no cg_detr*_io.pt fixtures found")


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _sibling(io_path: Path, suffix: str) -> Path:
    return io_path.with_name(io_path.name.replace("_io.pt", suffix))


@pytest.fixture(params=IO_FILES, ids=_ids(IO_FILES), scope="module")
def fixture(request) -> dict:
    """The io record, its checkpoint and a model loaded from it (eval mode), plus the outputs
    of both of Lighthouse's calls: evaluation (no targets) and training (with targets)."""
    io = torch.load(request.param, weights_only=True)
    ckpt = torch.load(_sibling(request.param, ".ckpt"), weights_only=False)  # `opt`: EasyDict
    model = build_model(io["config"])
    model.load_state_dict(ckpt["model"], strict=True)  # copies: the shared storage is untouched
    model.eval()
    with torch.no_grad():
        outputs = model(**io["inputs"])
        train_outputs = model(**io["inputs"], targets=io["targets"])
    return {"path": request.param, "io": io, "ckpt": ckpt, "model": model, "outputs": outputs,
            "train_outputs": train_outputs}  # fmt: skip


def _calls(fixture: dict) -> list[tuple[str, dict, dict]]:
    """``(name, Lighthouse's record, our outputs)`` for each forward call in the fixture."""
    io = fixture["io"]
    calls = [("eval", io, fixture["outputs"])]
    if TRAIN_CALL in io.get("extra_calls", {}):
        calls.append((TRAIN_CALL, io["extra_calls"][TRAIN_CALL], fixture["train_outputs"]))
    return calls


def _layout(state: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in state.items()]


def _isclose(got: float, want: float, rel_tol: float = LOSS_RTOL) -> bool:
    return math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-7)


def _metas(io: dict) -> list[dict]:
    return [dict(meta) for meta in io["meta"]]


def _assert_outputs_close(got: dict, want: dict, keys: list[str], call: str) -> None:
    assert list(got) == keys, call
    for key in keys:
        if key == "aux_outputs":
            assert len(got[key]) == len(want[key])
            for i, (g, w) in enumerate(zip(got[key], want[key], strict=True)):
                assert list(g) == list(w)
                for name in w:
                    torch.testing.assert_close(g[name], w[name], atol=ATOL, rtol=RTOL,
                                               msg=f"{call} aux {i} {name}")  # fmt: skip
        elif want[key] is None or got[key] is None:
            assert got[key] is None and want[key] is None, (call, key)
        elif want[key].dtype == torch.bool:
            assert torch.equal(got[key], want[key]), (call, key)
        else:
            torch.testing.assert_close(got[key], want[key], atol=ATOL, rtol=RTOL,
                                       msg=f"{call} {key}")  # fmt: skip


# --------------------------------------------------------------------------- weights and config


def test_registered_and_built_through_the_registry(fixture):
    assert "cg_detr" in MODELS.names()
    bundle = MODELS.get("cg_detr")(fixture["io"]["config"])
    assert isinstance(bundle.model, CGDETR)
    assert isinstance(bundle.criterion, CGDETRCriterion)


def test_state_dict_layout_matches_checkpoint(fixture):
    model = build_model(fixture["io"]["config"])
    assert _layout(model.state_dict()) == _layout(fixture["ckpt"]["model"])
    assert list(fixture["ckpt"]) == ["model", "optimizer", "lr_scheduler", "epoch", "opt"]


def test_our_checkpoint_loads_into_a_fresh_model_strictly(fixture):
    """Both ways: our state dict (as our training writes it) loads strictly into a model
    built from the fixture's config, and gives the same outputs."""
    io, model = fixture["io"], fixture["model"]
    other = build_model(io["config"])
    other.load_state_dict({k: v.clone() for k, v in model.state_dict().items()}, strict=True)
    with torch.no_grad():
        out = other.eval()(**io["inputs"])
    torch.testing.assert_close(out["pred_spans"], fixture["outputs"]["pred_spans"])


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
    opt = load_config("cg_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
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
        cfg = load_config("cg_detr", "clotho-moment", "clap", overrides, root=root)
        for key, value in io["config"].items():
            if key.endswith("_log_txt_formatter"):
                continue  # added by the training loop, not the loader
            assert cfg[key] == value, (root, key)


def test_project_config_equals_lighthouses(lighthouse_configs_dir):
    ours = REPO_ROOT / "configs" / "model" / "cg_detr.yml"
    assert ours.read_bytes() == (lighthouse_configs_dir / "model" / "cg_detr.yml").read_bytes()
    mine = load_config("cg_detr", "clotho-moment", "clap", root=REPO_ROOT / "configs")
    theirs = load_config("cg_detr", "clotho-moment", "clap", root=lighthouse_configs_dir)
    assert mine == theirs


# --------------------------------------------------------------------------- forward


def test_forward_matches_lighthouse(fixture):
    """Both calls, every output (None where Lighthouse gives None, bool masks exactly)."""
    for call, record, out in _calls(fixture):
        _assert_outputs_close(out, record["outputs"], record["output_keys"], call)


def test_intermediates_match_lighthouse(fixture):
    """Pin where a divergence starts: projections, dummy encoder, T2V (frames, attention, the
    global token's keyless pass), encoder memory, decoder states. Lighthouse's encoders are
    sequence-first; its T2V output also carries the (unchanged) dummy and text tokens."""
    io, model = fixture["io"], fixture["model"]
    got: dict[str, list] = {}

    def keep(name):
        def hook(_module, _inputs, output):
            got.setdefault(name, []).append(output)

        return hook

    modules = {
        "input_vid_proj": model.input_vid_proj,
        "input_txt_proj": model.input_txt_proj,
        "txtproj_encoder": model.txtproj_encoder,
        "transformer.t2v_encoder": model.transformer.t2v_encoder,
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
    frames = io["inputs"]["src_vid"].shape[1]
    for name, calls in expected.items():
        # the positive pass comes first (our negative pass may add calls after it)
        for i, want in enumerate(calls):
            mine = got[name][i]
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


def _assert_matches(got, want) -> None:
    assert len(got) == len(want)
    for (gi, gj), (wi, wj) in zip(got, want, strict=True):
        assert torch.equal(gi, wi) and torch.equal(gj, wj), ((gi, gj), (wi, wj))


@pytest.mark.parametrize("source", ["fixture_outputs", "model_outputs"])
def test_matcher_indices_exact(fixture, source: str):
    io = fixture["io"]
    for call, record, mine in _calls(fixture):
        if "matcher_indices" not in record:
            continue
        outputs = record["outputs"] if source == "fixture_outputs" else mine
        criterion = build(io["config"]).criterion
        criterion(outputs, io["targets"])
        _assert_matches(criterion.last_matches.main, record["matcher_indices"])
        want_aux = record.get("aux_matcher_indices", [])
        assert len(criterion.last_matches.aux) == len(want_aux), call
        for got, want in zip(criterion.last_matches.aux, want_aux, strict=True):
            _assert_matches(got, want)


def test_every_loss_and_the_weighted_total_match_lighthouse(fixture):
    io = fixture["io"]
    criterion = build(io["config"]).criterion
    assert criterion.weight_dict == io["weight_dict"]
    totals = {}
    for call, record, _ in _calls(fixture):
        losses = criterion(record["outputs"], io["targets"])
        assert list(losses) == list(record["loss_dict"]), call  # Lighthouse's order too
        for key, want in record["loss_dict"].items():
            assert _isclose(float(losses[key]), want), (call, key, float(losses[key]), want)
        weights = criterion.weight_dict
        total = float(sum(losses[k] * weights[k] for k in losses if k in weights))
        assert _isclose(total, record["total_weighted_loss"]), (call, total)
        totals[call] = (total, losses)
    training = io.get("training_loss")
    if training:
        source = TRAIN_CALL if TRAIN_CALL in training["computed_from"] else "eval"
        assert _isclose(totals[source][0], training["total"])
    # what Lighthouse's evaluation logs: each term weighted (1 without a weight), and the total
    meters = io.get("eval", {}).get("standalone_evaluate", {}).get("loss_meters")
    if meters:
        total, losses = totals["eval"]
        for key, want in meters.items():
            weight = criterion.weight_dict.get(key, 1.0)
            got = total if key == "loss_overall" else float(losses[key]) * weight
            assert _isclose(got, want), (key, got, want)


def test_losses_of_the_model_outputs_match_lighthouse(fixture):
    """End to end: our forward passes, then our criterion, against Lighthouse's losses (to the
    outputs' tolerance, since the outputs themselves may differ by float rounding)."""
    io = fixture["io"]
    criterion = build(io["config"]).criterion
    for call, record, mine in _calls(fixture):
        with torch.no_grad():  # global_rep_tokens is the parameter itself
            losses = criterion(mine, io["targets"])
        for key, want in record["loss_dict"].items():
            assert _isclose(float(losses[key]), want, rel_tol=RTOL), (call, key)


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
        for key, want in record["loss_dict"].items():
            assert _isclose(float(losses[key]), want, rel_tol=RTOL), (call, key)
        _assert_matches(criterion.last_matches.main, record["matcher_indices"])


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
    random.seed(io["seed"])
    metas, inputs, targets = collate([dataset[i] for i in range(len(dataset))])
    assert [m["qid"] for m in metas] == [m["qid"] for m in io["meta"]]
    if "meta_after_dataset" in io:
        windows = [m["relevant_windows"] for m in metas]
        assert windows == [m["relevant_windows"] for m in io["meta_after_dataset"]]
    extra = training_inputs(fixture["model"], metas, targets)
    for key, want in io["inputs"].items():
        if key in ("vid", "qid"):
            assert extra[key] == list(want), key
            continue
        assert inputs[key].dtype == want.dtype and inputs[key].shape == want.shape, key
        torch.testing.assert_close(inputs[key], want, atol=1e-6, rtol=0, msg=key)
    assert extra["targets"] is targets
    for got, want in zip(targets["span_labels"], io["targets"]["span_labels"], strict=True):
        assert got["spans"].dtype == want["spans"].dtype
        assert torch.equal(got["spans"], want["spans"]), (got["spans"], want["spans"])
    for key, want in io["targets"].items():
        if key == "span_labels":
            continue
        got = targets["saliency_all_labels" if key == "relevant_clips" else key]
        assert got.dtype == want.dtype and torch.equal(got, want), (key, got, want)


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
    inputs = _tiny_batch()
    targets = _tiny_targets(inputs)
    out = model(**inputs, vid=["a", "b", "c"], targets=targets)
    losses = bundle.criterion(out, targets)
    assert losses["loss_ms_align"] > 0 and losses["loss_distill"] > 0
    weights = bundle.criterion.weight_dict
    total = sum(losses[k] * weights[k] for k in losses if k in weights)
    assert torch.isfinite(total)
    total.backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == {  # built for checkpoint compatibility only, as in Lighthouse
        "txt_position_embed.position_embeddings.weight",
        "txt_position_embed.LayerNorm.weight",
        "txt_position_embed.LayerNorm.bias",
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
    inputs = _tiny_batch(batch=3)
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
        torch.testing.assert_close(out[key], out_noisy[key], atol=1e-5, rtol=1e-5, msg=key)
    valid = inputs["src_vid_mask"].bool()
    torch.testing.assert_close(
        out["saliency_scores"][valid], out_noisy["saliency_scores"][valid], atol=1e-5, rtol=1e-5
    )


def test_aux_outputs_follow_decoder_layers_and_aux_loss():
    with torch.no_grad():
        assert CGDETR(**{**TINY, "dec_layers": 1}).eval()(**_tiny_batch())["aux_outputs"] == []
        assert "aux_outputs" not in CGDETR(**TINY, aux_loss=False).eval()(**_tiny_batch())


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
        out = bundle.model.eval()(**_tiny_batch(), vid=["a", "b", "c"])
    assert out["pred_spans"].shape == (3, 5, 2)


def test_empty_text_is_a_one_line_error():
    model = CGDETR(**TINY).eval()
    inputs = _tiny_batch()
    inputs["src_txt"] = inputs["src_txt"][:, :0]
    inputs["src_txt_mask"] = inputs["src_txt_mask"][:, :0]
    with pytest.raises(ValueError, match="at least one text token"):
        model(**inputs)


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
