import math
from pathlib import Path

import pytest
import torch

from lighthouse_audio.models.criterion import SetCriterion, build_criterion, build_weight_dict
from lighthouse_audio.models.matcher import HungarianMatcher
from tests.conftest import fixture_files

IO_FILES = fixture_files("*_io.pt")
REL_TOL = 1e-5


def load_io(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def isclose(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=1e-7)


def weighted_total(losses: dict, weight_dict: dict) -> torch.Tensor:
    return sum(losses[k] * weight_dict[k] for k in losses if k in weight_dict)


def clone_outputs(outputs: dict, requires_grad: bool = False) -> dict:
    def leaf(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().clone()
        return t.requires_grad_(requires_grad and t.is_floating_point())

    out = {k: leaf(v) for k, v in outputs.items() if isinstance(v, torch.Tensor)}
    out["video_mask"] = outputs["video_mask"].clone()
    out["aux_outputs"] = [
        {k: leaf(v) for k, v in a.items()} for a in outputs.get("aux_outputs", [])
    ]
    return out


@pytest.fixture(params=IO_FILES, ids=[p.name for p in IO_FILES])
def io(request) -> dict:
    return load_io(request.param)


def test_weight_dict_matches_fixture(io):
    assert build_weight_dict(io["config"]) == io["weight_dict"]


def test_every_loss_matches_fixture(io):
    criterion = build_criterion(io["config"])
    losses = criterion(io["outputs"], io["targets"])
    assert set(losses) == set(io["loss_dict"])
    for key, want in io["loss_dict"].items():
        got = float(losses[key])
        assert isclose(got, want), f"{key}: got {got!r}, want {want!r}"
    total = float(weighted_total(losses, criterion.weight_dict))
    assert isclose(total, io["total_weighted_loss"]), (total, io["total_weighted_loss"])


def test_criterion_exposes_fixture_matches(io):
    criterion = build_criterion(io["config"])
    criterion(io["outputs"], io["targets"])
    matches = criterion.last_matches
    assert matches is not None
    pairs = [(matches.main, io["matcher_indices"])]
    pairs += list(zip(matches.aux, io.get("aux_matcher_indices", []), strict=True))
    for got, want in pairs:
        for (gi, gj), (wi, wj) in zip(got, want, strict=True):
            assert torch.equal(gi, wi) and torch.equal(gj, wj)


def test_gradient_flows(io):
    criterion = build_criterion(io["config"])
    outputs = clone_outputs(io["outputs"], requires_grad=True)
    losses = criterion(outputs, io["targets"])
    weighted_total(losses, criterion.weight_dict).backward()
    leaves = [outputs[k] for k in ("pred_logits", "pred_spans", "saliency_scores")]
    leaves += [outputs["saliency_scores_neg"]]
    for aux in outputs["aux_outputs"]:
        leaves += [aux["pred_logits"], aux["pred_spans"]]
    for t in leaves:
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_saliency_skipped_without_labels(io):
    criterion = build_criterion(io["config"])
    targets = {"span_labels": io["targets"]["span_labels"]}
    losses = criterion(io["outputs"], targets)
    assert float(losses["loss_saliency"]) == 0.0
    assert isclose(float(losses["loss_span"]), io["loss_dict"]["loss_span"])


def test_empty_targets_are_finite(io):
    criterion = build_criterion(io["config"])
    outputs = clone_outputs(io["outputs"], requires_grad=True)
    targets = dict(io["targets"])
    targets["span_labels"] = [{"spans": torch.zeros(0, 2)} for _ in targets["span_labels"]]
    losses = criterion(outputs, targets)
    for key, value in losses.items():
        assert torch.isfinite(value), key
    assert losses["loss_span"].item() == 0.0 and losses["class_error"].item() == 0.0
    weighted_total(losses, criterion.weight_dict).backward()
    assert torch.isfinite(outputs["pred_logits"].grad).all()


def looped_rank_contrastive(scores, scores_neg, mask, labels, tau=0.5):
    """Reference written from README §7: loop over levels, skip levels without positives."""
    scores = torch.cat([scores, scores_neg], dim=1)
    labels = torch.cat([labels, torch.zeros_like(labels)], dim=1)
    mask = mask.repeat(1, 2)
    scores = mask * scores + (1.0 - mask) * -1e3
    total = 0.0
    for r in range(1, 12):
        pos = labels >= r
        if pos.sum() == 0:
            continue
        logits = scores / tau
        logits = logits - logits.max(dim=1, keepdim=True).values
        log_prob = logits - torch.log(logits.exp().sum(1, keepdim=True) + 1e-6)
        mean_pos = (pos * log_prob * mask).sum(1) / (pos.sum(1) + 1e-6)
        total = total + (-mean_pos * (pos.sum(1) > 0)).mean()
    return total / 12


def test_rank_contrastive_multilevel_labels():
    g = torch.Generator().manual_seed(0)
    batch, length = 4, 12
    scores, scores_neg = (
        torch.randn(batch, length, generator=g),
        torch.randn(batch, length, generator=g),
    )
    mask = torch.ones(batch, length)
    mask[1, 9:] = 0
    mask[3, 5:] = 0
    labels = torch.randint(0, 5, (batch, length), generator=g).float() * mask
    labels[2] = 0  # a row without positives
    criterion = SetCriterion(HungarianMatcher(), {}, eos_coef=0.1, losses=["saliency"])
    got = criterion._rank_contrastive(scores, scores_neg, mask, labels)
    want = looped_rank_contrastive(scores, scores_neg, mask, labels)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="unknown losses"):
        SetCriterion(HungarianMatcher(), {}, eos_coef=0.1, losses=["boxes"])
    with pytest.raises(ValueError, match="span_loss_type"):
        SetCriterion(HungarianMatcher(), {}, eos_coef=0.1, losses=["spans"], span_loss_type="ce")


def test_weight_dict_layers():
    opt = {
        "span_loss_coef": 10,
        "giou_loss_coef": 1,
        "label_loss_coef": 4,
        "lw_saliency": 1,
        "aux_loss": True,
        "dec_layers": 3,
    }
    weights = build_weight_dict(opt)
    assert set(weights) == {
        "loss_span", "loss_giou", "loss_label", "loss_saliency",
        "loss_span_0", "loss_giou_0", "loss_label_0",
        "loss_span_1", "loss_giou_1", "loss_label_1",
    }  # fmt: skip
    assert set(build_weight_dict({**opt, "aux_loss": False})) == {
        "loss_span", "loss_giou", "loss_label", "loss_saliency"
    }  # fmt: skip


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(io):
    criterion = build_criterion(io["config"])
    cpu = criterion(io["outputs"], io["targets"])
    outputs = clone_outputs(io["outputs"])
    outputs = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in outputs.items()}
    outputs["aux_outputs"] = [{k: v.cuda() for k, v in a.items()} for a in outputs["aux_outputs"]]
    # targets stay on the CPU: the criterion moves what it needs
    gpu = criterion.cuda()(outputs, io["targets"])
    for key, value in cpu.items():
        assert isclose(float(gpu[key]), float(value)), key
