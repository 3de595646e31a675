"""The checks every Lighthouse parity test of the models beside QD-DETR shares (Moment-DETR,
CG-DETR, EaTR, UVCOM, TR-DETR, TaskWeave).

Each model's test module parametrises over every ``<model>*_io.pt`` in the model-fixture folder
(``$LIGHTHOUSE_AUDIO_MODEL_FIXTURES``, :func:`io_files`), so held-back fixtures are covered
without naming them, and keeps only what is its own: its outputs, intermediates and extra
losses. Expected values always come from the fixtures; the tolerances are the fixtures'
README §9.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

from lighthouse_audio.config import load_config
from lighthouse_audio.data.collate import collate
from lighthouse_audio.evaluation.metrics import eval_submission
from lighthouse_audio.models.postprocess import outputs_to_predictions
from tests.conftest import REPO_ROOT, model_fixture_files

ATOL = RTOL = 1e-4  # outputs (README §9)
LOSS_RTOL = 1e-5  # losses (README §9)
LOSS_ATOL = 1e-7  # the floor under a loss near 0
SCORE_ATOL = 1.5e-4  # prediction scores from our outputs: one unit of their 4th decimal
INPUT_ATOL = 1e-6  # dataset inputs rebuilt from the raw features
INIT_ATOL = 1e-7  # seeded initial weights
CHECKPOINT_KEYS = ["model", "optimizer", "lr_scheduler", "epoch", "opt"]

BuildModel = Callable[[Mapping[str, Any]], nn.Module]


# --------------------------------------------------------------------------- fixtures


def io_files(prefix: str) -> list[Path]:
    """Every ``<prefix>*_io.pt`` fixture."""
    return model_fixture_files(f"{prefix}*_io.pt")


def listings(prefix: str) -> list[Path]:
    """Every ``<prefix>*_state_dict.txt`` listing."""
    return model_fixture_files(f"{prefix}*_state_dict.txt")


def skip_without(files: list[Path], prefix: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not files, reason=f"no {prefix}*_io.pt fixtures found")


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def sibling(io_path: Path, suffix: str) -> Path:
    """The file of the same fixture with ``suffix`` for ``_io.pt`` (``.ckpt``, ``_preds.jsonl``)."""
    return io_path.with_name(io_path.name.replace("_io.pt", suffix))


def load_fixture(io_path: Path, build_model: BuildModel) -> dict[str, Any]:
    """The io record, its checkpoint and a model loaded from it strictly (eval mode)."""
    io = torch.load(io_path, weights_only=True)
    ckpt = torch.load(sibling(io_path, ".ckpt"), weights_only=False)  # `opt`: EasyDict
    model = build_model(io["config"])
    model.load_state_dict(ckpt["model"], strict=True)  # copies: the shared storage is untouched
    model.eval()
    return {"path": io_path, "io": io, "ckpt": ckpt, "model": model}


def layout(state: Mapping[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(k, tuple(v.shape), v.dtype) for k, v in state.items()]


def isclose(got: float, want: float, rel_tol: float = LOSS_RTOL) -> bool:
    return math.isclose(got, want, rel_tol=rel_tol, abs_tol=LOSS_ATOL)


def metas(io: dict) -> list[dict]:
    return [dict(meta) for meta in io["meta"]]


def standalone(io: dict) -> dict:
    """Lighthouse's evaluation record (``evaluate.py`` on the fixture's batch)."""
    return io["eval"]["standalone_evaluate"]


# --------------------------------------------------------------------------- weights and config


def assert_checkpoint_layout(model: nn.Module, ckpt: dict) -> None:
    """A freshly built model has the checkpoint's keys, shapes, dtypes and order."""
    assert layout(model.state_dict()) == layout(ckpt["model"])
    assert list(ckpt) == CHECKPOINT_KEYS


def reload_strictly(
    model: nn.Module, build_model: BuildModel, config: Mapping[str, Any], lighthouse: Mapping
) -> nn.Module:
    """Both ways: our state dict has exactly the layout of Lighthouse's (``lighthouse``), so
    Lighthouse loads it strictly, and it loads strictly into a fresh model built from
    ``config``, tensor for tensor. Returns that model (eval mode)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert layout(state) == layout(lighthouse)
    fresh = build_model(config)
    fresh.load_state_dict(state, strict=True)
    for key, value in state.items():
        assert torch.equal(fresh.state_dict()[key], value), key
    return fresh.eval()


def assert_listing_layout(model: nn.Module, listing: Path) -> None:
    """The model (built from Lighthouse's default config) has the listing's tensors, in order,
    and its header's counts."""
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
    assert layout(model.state_dict()) == rows
    assert sum(p.numel() for p in model.state_dict().values()) == int(counts[2])


def assert_seeded_init_reproduces(io: dict, ckpt: dict, build_model: BuildModel) -> None:
    """The fixture weights are Lighthouse's seeded init plus recorded noise (README §2), so the
    same construction order gives them back; tensors stored as shifted windows of a shared
    buffer (all but the first of each group) hold no initialised values to compare."""
    random.seed(io["seed"])
    np.random.seed(io["seed"])
    torch.manual_seed(io["seed"])
    model = build_model(io["config"])
    noise = torch.Generator().manual_seed(io["seed"] + 1000)
    with torch.no_grad():
        for param in model.parameters():  # shared modules once, at their first name
            param.add_(torch.randn(param.shape, generator=noise) * io["perturb_std"])
    sharing = io.get("weight_sharing") or {}
    windows = {key for group in sharing.get("groups", []) for key in group["keys"][1:]}
    state = model.state_dict()
    compared = [key for key in ckpt["model"] if key not in windows]
    assert len(compared) >= len(ckpt["model"]) - len(windows) > 0
    for key in compared:
        torch.testing.assert_close(state[key], ckpt["model"][key], atol=INIT_ATOL, rtol=0, msg=key)


def assert_trees_give_fixture_config(name: str, io: dict, lighthouse_configs_dir: Path) -> None:
    """Lighthouse's YAML tree (unchanged) and ours, with the fixture's overrides, give the
    fixture's config (``name``: the config file, i.e. the registered model)."""
    overrides = [f"{k}={v}" for k, v in {"seed": io["seed"], **io["overrides"]}.items()]
    for root in (lighthouse_configs_dir, REPO_ROOT / "configs"):
        cfg = load_config(name, "clotho-moment", "clap", overrides, root=root)
        for key, value in io["config"].items():
            if key.endswith("_log_txt_formatter"):
                continue  # added by the training loop, not the loader
            assert cfg[key] == value, (root, key)


def assert_project_config_is_lighthouses(name: str, lighthouse_configs_dir: Path) -> Any:
    """``configs/model/<name>.yml`` is Lighthouse's byte for byte, and both trees load the same
    config; returns ours."""
    ours = REPO_ROOT / "configs" / "model" / f"{name}.yml"
    assert ours.read_bytes() == (lighthouse_configs_dir / "model" / f"{name}.yml").read_bytes()
    mine = load_config(name, "clotho-moment", "clap", root=REPO_ROOT / "configs")
    theirs = load_config(name, "clotho-moment", "clap", root=lighthouse_configs_dir)
    assert mine == theirs
    return mine


# --------------------------------------------------------------------------- forward


def assert_close_tree(got: Any, want: Any, msg: str = "", exact: bool = False) -> None:
    """Tensors to the outputs' tolerance (bool tensors, and every tensor with ``exact``, equal
    with their dtype), recursing into dicts (same keys in the same order) and lists; None
    where Lighthouse gives None; anything else equal."""
    if isinstance(want, torch.Tensor):
        if exact or want.dtype == torch.bool:
            assert got.dtype == want.dtype and torch.equal(got, want), (msg, got, want)
        else:
            torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL, msg=msg)
    elif isinstance(want, dict):
        assert list(got) == list(want), msg
        for key in want:
            assert_close_tree(got[key], want[key], f"{msg}.{key}", exact)
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), msg
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close_tree(g, w, f"{msg}[{i}]", exact)
    elif want is None:
        assert got is None, msg
    else:
        assert got == want, msg


def assert_outputs_close(
    got: Mapping[str, Any],
    want: Mapping[str, Any],
    keys: Sequence[str],
    call: str = "",
    exact: Iterable[str] = (),
) -> None:
    """Our outputs have Lighthouse's keys in its order, each close to its value (the keys in
    ``exact`` equal)."""
    exact = set(exact)
    assert list(got) == list(keys), call
    for key in keys:
        assert_close_tree(got[key], want[key], f"{call} {key}".strip(), key in exact)


class Call(NamedTuple):
    """One forward call of a module, as a hook sees it."""

    inputs: tuple
    output: Any


@contextmanager
def recorded_calls(model: nn.Module, names: Iterable[str]) -> Iterator[dict[str, list[Call]]]:
    """Within the block, every call of each named submodule (``model.get_submodule``) is
    recorded, in order; a module never called has no entry."""
    calls: dict[str, list[Call]] = {}

    def keep(name: str):
        def hook(_module, inputs, output):
            calls.setdefault(name, []).append(Call(inputs, output))

        return hook

    handles = [model.get_submodule(name).register_forward_hook(keep(name)) for name in names]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------- matcher and losses


def assert_matches(got, want) -> None:
    """Matcher indices, exactly (README §9)."""
    assert len(got) == len(want)
    for (gi, gj), (wi, wj) in zip(got, want, strict=True):
        assert torch.equal(gi, wi) and torch.equal(gj, wj), ((gi, gj), (wi, wj))


def assert_last_matches(criterion: nn.Module, record: dict, call: str = "") -> None:
    """The criterion's last matches, main and every aux layer, are the record's."""
    assert_matches(criterion.last_matches.main, record["matcher_indices"])
    want_aux = record.get("aux_matcher_indices", [])
    assert len(criterion.last_matches.aux) == len(want_aux), call
    for got, want in zip(criterion.last_matches.aux, want_aux, strict=True):
        assert_matches(got, want)


def assert_losses_close(
    losses: Mapping[str, torch.Tensor],
    expected: Mapping[str, float],
    rel_tol: float = LOSS_RTOL,
    call: str = "",
) -> None:
    """Every expected loss (``rel_tol``: ``RTOL`` for losses of our own outputs, which may
    differ from Lighthouse's by float rounding)."""
    for key, want in expected.items():
        got = float(losses[key])
        assert isclose(got, want, rel_tol), (call, key, got, want)


def weighted_total(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> float:
    return float(sum(losses[k] * weights[k] for k in losses if k in weights))


def assert_loss_meters(
    meters: Mapping[str, float],
    losses: Mapping[str, torch.Tensor],
    total: float,
    weights: Mapping[str, float],
    call: str = "",
) -> None:
    """What Lighthouse's evaluation logs: each term weighted (1 without a weight), and the
    total (``loss_overall``)."""
    for key, want in meters.items():
        got = total if key == "loss_overall" else float(losses[key]) * weights.get(key, 1.0)
        assert isclose(got, want), (call, key, got, want)


def assert_losses_and_total(criterion: nn.Module, io: dict, ordered: bool) -> None:
    """The criterion on Lighthouse's outputs: its weights, every loss (in Lighthouse's order
    with ``ordered``), the weighted total, the training loss and the evaluation's meters."""
    assert criterion.weight_dict == io["weight_dict"]
    if ordered:
        assert list(criterion.weight_dict) == list(io["weight_dict"])
    losses = criterion(io["outputs"], io["targets"])
    if ordered:
        assert list(losses) == list(io["loss_dict"])  # Lighthouse's order (the logs keep it)
    else:
        assert set(losses) == set(io["loss_dict"])
    assert_losses_close(losses, io["loss_dict"])
    weights = criterion.weight_dict
    total = weighted_total(losses, weights)
    assert isclose(total, io["total_weighted_loss"]), (total, io["total_weighted_loss"])
    if "training_loss" in io:
        assert io["training_loss"]["computed_from"] == "outputs"
        assert isclose(total, io["training_loss"]["total"])
    meters = io.get("eval", {}).get("standalone_evaluate", {}).get("loss_meters")
    if meters:
        assert_loss_meters(meters, losses, total, weights)


# --------------------------------------------------------------------------- predictions


def assert_postprocessed(
    postprocessor: Any, outputs: dict, metas: list[dict], expected: dict, record: str = ""
) -> list[dict]:
    """Lighthouse's outputs through our post-processor: its settings, the windows before and
    after it, the predictions file's text and the metrics of an evaluation record."""
    assert postprocessor.postprocessor.settings() == expected["postprocessor_settings"]
    assert outputs_to_predictions(outputs, metas) == expected["before_postprocess"]
    predictions = postprocessor(outputs, metas)
    assert predictions == expected["predictions"], record
    assert expected["jsonl_text"].splitlines() == [json.dumps(p) for p in predictions]
    assert eval_submission(predictions, metas) == expected["metrics"], record
    return predictions


def predictions_file(io_path: Path) -> list[str]:
    """The lines of the fixture's predictions file, as Lighthouse wrote it."""
    return sibling(io_path, "_preds.jsonl").read_text().splitlines()


def assert_standalone_predictions(fixture: dict, postprocessor: Any) -> list[dict]:
    """:func:`assert_postprocessed` on the evaluation record, and the predictions file line for
    line."""
    io = fixture["io"]
    expected = standalone(io)
    predictions = assert_postprocessed(postprocessor, io["outputs"], metas(io), expected)
    assert predictions_file(fixture["path"]) == expected["jsonl_text"].splitlines()
    return predictions


def assert_model_predictions(
    postprocessor: Any, outputs: dict, metas: list[dict], expected: dict, record: str = ""
) -> None:
    """Our forward pass through the post-processor: the same windows in the same order, scores
    to one unit of their 4th decimal (the outputs may differ by float rounding), and the
    record's metrics."""
    predictions = postprocessor(outputs, metas)
    for got, want in zip(predictions, expected["predictions"], strict=True):
        windows, want_windows = got["pred_relevant_windows"], want["pred_relevant_windows"]
        assert {k: v for k, v in got.items() if k != "pred_relevant_windows"} == {
            k: v for k, v in want.items() if k != "pred_relevant_windows"
        }
        assert [w[:2] for w in windows] == [w[:2] for w in want_windows], record
        assert [w[2] for w in windows] == pytest.approx(
            [w[2] for w in want_windows], abs=SCORE_ATOL
        )
    assert eval_submission(predictions, metas) == expected["metrics"], record


# --------------------------------------------------------------------------- data


def collate_fixture(io: dict, dataset: Any) -> tuple[list[dict], dict, dict]:
    """The whole dataset collated (Python's random seeded as the fixture was), in the fixture's
    query order, with its windows as the dataset left them."""
    random.seed(io["seed"])
    metas, inputs, targets = collate([dataset[i] for i in range(len(dataset))])
    assert [m["qid"] for m in metas] == [m["qid"] for m in io["meta"]]
    if "meta_after_dataset" in io:
        windows = [m["relevant_windows"] for m in metas]
        assert windows == [m["relevant_windows"] for m in io["meta_after_dataset"]]
    return metas, inputs, targets


def assert_inputs_equal(inputs: Mapping[str, torch.Tensor], want: Mapping[str, Any]) -> None:
    for key, value in want.items():
        assert inputs[key].dtype == value.dtype and inputs[key].shape == value.shape, key
        torch.testing.assert_close(inputs[key], value, atol=INPUT_ATOL, rtol=0, msg=key)


def assert_targets_equal(
    targets: Mapping[str, Any], want: Mapping[str, Any], aliases: Mapping[str, str] | None = None
) -> None:
    """Every fixture target exactly, with its dtype (``aliases``: fixture key -> ours)."""
    aliases = aliases or {}
    for got, expected in zip(targets["span_labels"], want["span_labels"], strict=True):
        assert got["spans"].dtype == expected["spans"].dtype
        assert torch.equal(got["spans"], expected["spans"]), (got["spans"], expected["spans"])
    for key, expected in want.items():
        if key != "span_labels":
            got = targets[aliases.get(key, key)]
            assert got.dtype == expected.dtype and torch.equal(got, expected), (key, got, expected)


def assert_dataset_rebuilds_the_batch(io: dict, dataset: Any) -> None:
    """The project's dataset and collate, fed the raw arrays and jsonl lines Lighthouse read,
    give its inputs and (where the fixture has them) targets."""
    _, inputs, targets = collate_fixture(io, dataset)
    assert_inputs_equal(inputs, io["inputs"])
    if io.get("targets"):
        assert_targets_equal(targets, io["targets"])
