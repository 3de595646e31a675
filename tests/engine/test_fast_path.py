"""The fast training path (device-resident data, the assignment on the device, static shapes)
against Lighthouse's fixtures and against the plain path."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from lighthouse_audio.cli.main import main
from lighthouse_audio.models.criterion import build_criterion
from lighthouse_audio.models.matcher import pad_target_spans
from lighthouse_audio.models.qd_detr import build_model
from tests.conftest import fixture_files
from tests.toy_model import run_dir, train_args

IO_FILES = fixture_files("*_io.pt")
FAST = ["resident_data=true", "assignment=device"]


@pytest.fixture(params=IO_FILES, ids=[p.name for p in IO_FILES], scope="module")
def fixture_pair(request) -> tuple[dict, dict]:
    io = torch.load(request.param, weights_only=True)
    ckpt_path = request.param.with_name(request.param.name.replace("_io.pt", ".ckpt"))
    return io, torch.load(ckpt_path, weights_only=False)


def static_inputs(inputs: dict, frames: int, tokens: int) -> dict:
    """The fixture's batch padded as ``static_shapes`` pads it: to the span and max_q_l."""
    out = {}
    for key, value in inputs.items():
        length = tokens if key.startswith("src_txt") else frames
        pad = [0, 0] * (value.dim() - 2) + [0, length - value.shape[1]]
        out[key] = F.pad(value, pad)
    return out


def device_targets(targets: dict, frames: int) -> dict:
    """The fixture's targets as ``DeviceSplit`` lays them out (spans padded, labels to span)."""
    spans = [t["spans"] for t in targets["span_labels"]]
    padded, sizes = pad_target_spans(spans)
    labels = targets["saliency_all_labels"]
    return {
        **targets,
        "span_padded": padded,
        "span_sizes": sizes,
        "saliency_all_labels": F.pad(labels, [0, frames - labels.shape[1]]),
    }


def test_fast_path_reproduces_the_fixture_losses(fixture_pair):
    """Lighthouse's batch through the fast path's pieces: every loss term as Lighthouse's."""
    io, ckpt = fixture_pair
    config = {**io["config"], "assignment": "device"}
    model = build_model(config)
    model.load_state_dict(ckpt["model"], strict=True)
    model.eval()
    frames, tokens = int(config["max_v_l"]), int(config["max_q_l"])
    with torch.no_grad():
        outputs = model(**static_inputs(io["inputs"], frames, tokens))
    criterion = build_criterion(config)
    losses = criterion(outputs, device_targets(io["targets"], frames))
    assert set(losses) == set(io["loss_dict"])
    for key, want in io["loss_dict"].items():
        got = float(losses[key])
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), (key, got, want)
    # the device solver found Lighthouse's (scipy's) matches
    for (gi, gj), (wi, wj) in zip(criterion.last_matches.main, io["matcher_indices"], strict=True):
        assert torch.equal(gi, wi) and torch.equal(gj, wj)


def test_fast_training_learns_the_toy_task_and_resumes_exactly(toy_data, tmp_path):
    """Trained through the CLI on the fast path: learns as the plain path does (the plain
    run's bar in test_train_e2e.py), and a resumed run continues bit for bit."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert main([*train_args(toy_data, a, "n_epoch=30"), "--fast"]) == 0
    config = (run_dir(a) / "config.yaml").read_text()
    assert "resident_data: true" in config and "assignment: device" in config
    metrics = json.loads((run_dir(a) / "best_val_metrics.json").read_text())["brief"]
    assert metrics["MR-full-mAP@0.5"] > 60 and metrics["MR-full-R1@0.5"] > 60, metrics

    assert main(train_args(toy_data, b, "n_epoch=2", *FAST)) == 0
    resume = ["--resume", str(run_dir(b) / "last.ckpt"), "n_epoch=3"]
    assert main(train_args(toy_data, b, "n_epoch=2", *FAST) + resume) == 0
    c = tmp_path / "c"
    assert main(train_args(toy_data, c, "n_epoch=3", *FAST)) == 0
    sd_b = torch.load(run_dir(b) / "last.ckpt", weights_only=False)["model"]
    sd_c = torch.load(run_dir(c) / "last.ckpt", weights_only=False)["model"]
    assert all(torch.equal(sd_b[k], sd_c[k]) for k in sd_b)


def test_plain_and_fast_paths_take_the_same_first_step(toy_data):
    """Same seed: the same first batch, dropout draws and matches on both paths, so every loss
    term but the saliency loss (whose frame pairs each path draws itself) agrees."""
    from lighthouse_audio.config import load_config
    from lighthouse_audio.data.loaders import build_dataset, build_feature_stores
    from lighthouse_audio.engine.batches import EpochData
    from lighthouse_audio.engine.distributed import Distributed
    from lighthouse_audio.models.bundle import build_model_bundle

    args = train_args(toy_data, toy_data / "unused")
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    overrides.append(f"features_root={toy_data / 'features'}")
    steps = {}
    for name, extra in (("plain", []), ("fast", FAST)):
        opt = load_config("qd_detr", "custom", "clap", [*overrides, *extra])
        torch.manual_seed(0)
        model, criterion, _ = build_model_bundle(opt)
        data = EpochData(build_dataset(opt, opt.train_path, build_feature_stores(opt)), opt,
                         torch.device("cpu"), Distributed())  # fmt: skip
        _, inputs, targets = next(iter(data.training(opt.bsz, seed=5)))
        torch.manual_seed(1)  # the same dropout draws
        model.train()
        steps[name] = {k: float(v) for k, v in criterion(model(**inputs), targets).items()}
    assert set(steps["plain"]) == set(steps["fast"])
    for key, want in steps["plain"].items():
        if key != "loss_saliency":
            assert math.isclose(steps["fast"][key], want, rel_tol=1e-5, abs_tol=1e-6), key
