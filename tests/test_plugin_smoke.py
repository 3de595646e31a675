"""Every registered plugin, by name: models build, run forward and backward and post-process at
tiny sizes; datasets and features have their config layers; baselines their contract."""

from __future__ import annotations

import pytest
import torch

from lighthouse_audio.config import config_root, load_config
from lighthouse_audio.registry import BASELINES, DATASETS, FEATURES, MODELS, valid_pairs

TINY = ["hidden_dim=256", "nheads=4", "enc_layers=1", "dec_layers=1", "dim_feedforward=32",
        "num_queries=3", "max_v_l=12", "max_a_l=12", "a_feat_dim=6", "t_feat_dim=5"]  # fmt: skip
# Settings a model cannot run without (UVCOM builds 30 slots whatever num_queries says).
REQUIRED = {"uvcom": ["num_queries=30"]}


def _batch(batch: int = 2, frames: int = 9, tokens: int = 4) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([frames, frames - 3])[:batch]
    mask = (torch.arange(frames) < lengths[:, None]).float()
    inputs = {
        "src_txt": torch.randn(batch, tokens, 5, generator=g),
        "src_txt_mask": torch.ones(batch, tokens),
        "src_vid": torch.rand(batch, frames, 2, generator=g),
        "src_vid_mask": mask,
        "src_aud": torch.randn(batch, frames, 6, generator=g),
        "src_aud_mask": mask,
    }
    targets = {
        "span_labels": [{"spans": torch.tensor([[0.5, 0.2]])} for _ in range(batch)],
        "saliency_pos_labels": torch.tensor([[3, 4]] * batch),
        "saliency_neg_labels": torch.tensor([[0, 1]] * batch),
        "saliency_all_labels": torch.zeros(batch, frames),
        "src_pos_mask": torch.zeros(batch, frames),
    }
    return inputs, targets


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_trains_a_step_and_predicts(name):
    opt = load_config(name, "custom", "clap", [*TINY, *REQUIRED.get(name, [])])
    model, criterion, postprocessor = MODELS.get(name)(opt)
    inputs, targets = _batch()
    losses = criterion(model(**inputs), targets)
    total = sum(losses[k] * criterion.weight_dict[k] for k in losses if k in criterion.weight_dict)
    total.backward()
    assert torch.isfinite(total)
    assert any(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        lines = postprocessor(model(**inputs), [{"qid": i, "query": "q", "vid": "v",
                                                 "duration": 9.0} for i in range(2)])  # fmt: skip
    assert [len(line["pred_relevant_windows"]) for line in lines] == [opt.num_queries] * 2


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_has_its_config_layer_and_a_feature(name):
    dataset = DATASETS.get(name)
    assert (config_root() / "dataset" / f"{name}.yml").is_file()
    assert dataset.max_ts_val > 0 and dataset.description
    assert any(d == name for d, _ in valid_pairs())


@pytest.mark.parametrize("name", FEATURES.names())
def test_every_feature_declares_domain_and_an_encoder_or_stored_form(name):
    feature = FEATURES.get(name)
    assert feature.domain == "audio" and feature.description
    dims = feature.encoder_dims()
    if (config_root() / "feature" / f"{name}.yml").is_file() and dims is not None:
        cfg = load_config("qd_detr", "custom", name)  # the YAML says what the encoder makes
        assert (cfg.a_feat_dim, cfg.t_feat_dim) == dims


def test_the_fixed_dims_of_the_built_in_encoders_are_read_off_their_classes():
    assert FEATURES.get("clap").encoder_dims() == (768, 768)
    assert FEATURES.get("aisfx-minilm").encoder_dims() == (512, 384)
    assert FEATURES.get("hf").encoder_dims() is None  # they depend on the models loaded


@pytest.mark.parametrize("name", BASELINES.names())
def test_every_baseline_says_how_it_is_tuned_and_predicts_runs(name):
    baseline = BASELINES.get(name)
    assert baseline.tuned_by.startswith("lighthouse ") and callable(baseline.predict_run)
