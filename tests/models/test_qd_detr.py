"""QD-DETR network: Lighthouse checkpoint compatibility and output parity, plus invariants.

Every ``*_io.pt`` fixture in the fixture folder is checked against its checkpoint (same stem
without ``_io``), so held-back fixtures are covered without naming them here.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lighthouse_audio.models.dropout import dropout
from lighthouse_audio.models.qd_detr import QDDETR, build_model
from tests.conftest import fixture_files
from tests.models.tiny_inputs import UNUSED_TEXT_POSITIONS, tiny_batch, with_noisy_padding

IO_FILES = fixture_files("*_io.pt")
LISTINGS = fixture_files("*_state_dict.txt")
ATOL, RTOL = 1e-5, 1e-4  # observed: <= 2e-6 on the public fixture


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _load(io_path: Path) -> tuple[dict, dict]:
    io = torch.load(io_path, weights_only=True)
    ckpt_path = io_path.with_name(io_path.name.replace("_io.pt", ".ckpt"))
    ckpt = torch.load(ckpt_path, weights_only=False)  # `opt` is a pickled EasyDict
    return io, ckpt


def _layout(state: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in state.items()]


def _assert_outputs_close(out: dict, expected: dict, keys: list[str]) -> None:
    assert list(out) == keys
    for key in keys:
        if key == "aux_outputs":
            assert len(out[key]) == len(expected[key])
            for i, (got, want) in enumerate(zip(out[key], expected[key], strict=True)):
                assert list(got) == list(want)
                for name in want:
                    torch.testing.assert_close(
                        got[name], want[name], atol=ATOL, rtol=RTOL, msg=f"aux {i} {name}"
                    )
        else:
            torch.testing.assert_close(out[key], expected[key], atol=ATOL, rtol=RTOL, msg=key)


@pytest.fixture(params=IO_FILES, ids=_ids(IO_FILES), scope="module")
def fixture_pair(request) -> tuple[dict, dict]:
    return _load(request.param)


def test_state_dict_layout_matches_checkpoint(fixture_pair):
    io, ckpt = fixture_pair
    model = build_model(io["config"])
    assert _layout(model.state_dict()) == _layout(ckpt["model"])
    model.load_state_dict(ckpt["model"], strict=True)


@pytest.mark.parametrize("listing", LISTINGS, ids=_ids(LISTINGS))
def test_state_dict_layout_matches_listing(listing: Path):
    lines = listing.read_text().splitlines()
    rows = []
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("[]").split(",") if d)
        rows.append((key, dims, getattr(torch, dtype)))
    counts = re.search(r"num tensors: (\d+); num elements: (\d+)", listing.read_text())
    assert counts, f"{listing.name} has no 'num tensors/num elements' header"
    assert len(rows) == int(counts[1])
    assert sum(int(np.prod(s)) for _, s, _ in rows) == int(counts[2])
    # The listing describes one of the fixture configurations.
    layouts = [_layout(build_model(_load(p)[0]["config"]).state_dict()) for p in IO_FILES]
    assert rows in layouts, f"no fixture config builds the layout in {listing.name}"


@pytest.mark.parametrize("batched_negative", [True, False], ids=["batched", "two_pass"])
def test_forward_matches_lighthouse(fixture_pair, batched_negative: bool):
    io, ckpt = fixture_pair
    model = build_model(io["config"], batched_negative=batched_negative)
    model.load_state_dict(ckpt["model"], strict=True)
    model.eval()
    with torch.no_grad():
        out = model(**io["inputs"])
    _assert_outputs_close(out, io["outputs"], io["output_keys"])
    assert out["video_mask"] is io["inputs"]["src_vid_mask"]


def test_intermediates_match_lighthouse(fixture_pair, monkeypatch):
    """Pin where a divergence starts: projections, encoder memory, decoder states."""
    io, ckpt = fixture_pair
    model = build_model(io["config"])
    model.load_state_dict(ckpt["model"], strict=True)
    model.eval()
    got: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(_module, _inputs, output):
            got[name] = output

        return hook

    model.input_vid_proj.register_forward_hook(keep("input_vid_proj"))
    model.input_txt_proj.register_forward_hook(keep("input_txt_proj"))
    model.position_embed.register_forward_hook(keep("position_embed_vid"))
    encode, decode = model.transformer.encode, model.transformer.decode

    def spy_encode(*args):
        got["memory"] = encode(*args)
        return got["memory"]

    def spy_decode(*args):
        got["decoded"] = decode(*args)
        return got["decoded"]

    monkeypatch.setattr(model.transformer, "encode", spy_encode)
    monkeypatch.setattr(model.transformer, "decode", spy_decode)
    with torch.no_grad():
        model(**io["inputs"])

    batch = io["inputs"]["src_txt"].shape[0]
    memory_local, memory_global = got["memory"]  # positive then negative halves
    hs, references = got["decoded"]
    expected = io["intermediates"]
    actual = {
        "input_vid_proj": got["input_vid_proj"],
        "input_txt_proj": got["input_txt_proj"],
        "position_embed_vid": got["position_embed_vid"],
        "transformer_memory_local_pos": memory_local[:batch],
        "transformer_memory_local_neg": memory_local[batch:],
        "transformer_memory_global_pos": memory_global[:batch],
        "transformer_memory_global_neg": memory_global[batch:],
        "transformer_hs_pos": hs,
        "transformer_reference_pos": references,
        # Lighthouse's encoder output is sequence-first [1+Lv, B, d], global token first.
        "encoder_out_pos": torch.cat((memory_global[:batch, None], memory_local[:batch]), 1),
    }
    for name, value in actual.items():
        want = expected[name]
        if name == "encoder_out_pos":
            want = want.transpose(0, 1)
        torch.testing.assert_close(value, want, atol=ATOL, rtol=RTOL, msg=name)


def test_seeded_init_reproduces_checkpoint(fixture_pair):
    """The fixture weights are Lighthouse's seeded init plus recorded noise: same init order."""
    io, ckpt = fixture_pair
    random.seed(io["seed"])
    np.random.seed(io["seed"])
    torch.manual_seed(io["seed"])
    model = build_model(io["config"])
    noise = torch.Generator().manual_seed(io["seed"] + 1000)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=noise) * io["perturb_std"])
    state = model.state_dict()
    for key, value in ckpt["model"].items():
        torch.testing.assert_close(state[key], value, atol=1e-7, rtol=0, msg=key)


# ---------------------------------------------------------------------------------------------
# Invariants on a small random model (no fixtures needed).

TINY = dict(txt_dim=16, vid_dim=2 + 12, enc_layers=1, dec_layers=2, dim_feedforward=32)


def _loss(out: dict) -> torch.Tensor:
    valid = out["video_mask"]
    total = out["pred_logits"].sum() + out["pred_spans"].sum()
    total = (
        total + (out["saliency_scores"] * valid).sum() + (out["saliency_scores_neg"] * valid).sum()
    )
    return total + sum(a["pred_logits"].sum() + a["pred_spans"].sum() for a in out["aux_outputs"])


def test_tiny_forward_backward():
    torch.manual_seed(0)
    model = QDDETR(**TINY)
    model.train()
    out = model(**tiny_batch())
    assert out["pred_logits"].shape == (3, 10, 2)
    assert out["pred_spans"].shape == (3, 10, 2)
    assert out["saliency_scores"].shape == out["saliency_scores_neg"].shape == (3, 9)
    assert len(out["aux_outputs"]) == 1
    _loss(out).backward()
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    assert unused == UNUSED_TEXT_POSITIONS
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_batched_negative_pass_matches_two_passes_with_gradients():
    torch.manual_seed(0)
    batched = QDDETR(**TINY, batched_negative=True).eval()
    two_pass = QDDETR(**TINY, batched_negative=False).eval()
    two_pass.load_state_dict(batched.state_dict())
    inputs = tiny_batch()
    out_b, out_t = batched(**inputs), two_pass(**inputs)
    _assert_outputs_close(out_b, out_t, list(out_t))
    _loss(out_b).backward()
    _loss(out_t).backward()
    for (name, p_b), p_t in zip(batched.named_parameters(), two_pass.parameters(), strict=True):
        if p_t.grad is not None:
            torch.testing.assert_close(p_b.grad, p_t.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_padded_content_does_not_change_predictions():
    torch.manual_seed(0)
    model = QDDETR(**TINY).eval()
    inputs = tiny_batch()
    noisy = with_noisy_padding(inputs)
    with torch.no_grad():
        out, out_noisy = model(**inputs), model(**noisy)
    for key in ("pred_logits", "pred_spans"):
        torch.testing.assert_close(out[key], out_noisy[key], atol=1e-6, rtol=1e-6, msg=key)
    valid = inputs["src_vid_mask"].bool()
    for key in ("saliency_scores", "saliency_scores_neg"):
        torch.testing.assert_close(out[key][valid], out_noisy[key][valid], atol=1e-6, rtol=1e-6)


def test_single_sample_batch_pairs_with_itself():
    torch.manual_seed(0)
    model = QDDETR(**TINY).eval()
    with torch.no_grad():
        out = model(**tiny_batch(batch=1))
    torch.testing.assert_close(out["saliency_scores"], out["saliency_scores_neg"])


def test_one_decoder_layer_gives_empty_aux_outputs():
    model = QDDETR(**{**TINY, "dec_layers": 1}).eval()
    with torch.no_grad():
        out = model(**tiny_batch())
    assert out["aux_outputs"] == []
    assert "aux_outputs" not in QDDETR(**TINY, aux_loss=False).eval()(**tiny_batch())


@pytest.mark.parametrize(
    ("change", "message"),
    [({"hidden_dim": 128}, "hidden_dim == 256"), ({"nheads": 3}, "must divide")],
)
def test_build_model_rejects_unsupported_dims(change: dict, message: str):
    opt = dict(
        hidden_dim=256, nheads=8, enc_layers=2, dec_layers=2, dim_feedforward=1024,
        num_queries=10, n_input_proj=2, input_dropout=0.5, dropout=0.1, position_embedding="sine",
        aux_loss=True, max_q_l=32, max_v_l=75, span_loss_type="l1", ctx_mode="audio_tef",
        v_feat_dim=2, a_feat_dim=768, t_feat_dim=768,
    )  # fmt: skip
    assert build_model(opt).input_vid_proj[0].net[1].in_features == 770
    with pytest.raises(ValueError, match=message):
        build_model({**opt, **change})


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_fast_dropout_statistics_gradient_and_seeding(p: float):
    x = torch.ones(200_000, requires_grad=True)
    torch.manual_seed(1)
    y = dropout(x, p)
    kept = y.detach() != 0
    assert abs(1 - kept.float().mean().item() - p) < 0.005
    assert abs(y.detach().mean().item() - 1) < 0.01  # inverted scaling keeps the expectation
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # gradient = mask * scale
    torch.manual_seed(1)
    torch.testing.assert_close(dropout(x, p), y)  # torch.manual_seed makes it repeatable
    assert dropout(x, p, training=False) is x
