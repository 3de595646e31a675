"""QD-DETR's text-shifted negative pass feeds only the training loss: skipping it at prediction
time changes no returned window and no saliency score (so prediction and validation skip it).

The positive half never reads the negative half (its attention masks are built from the positive
samples alone). Skipping it therefore gives bit for bit what Lighthouse computes, which runs the
two passes one after the other (``batched_negative=False``). Our training default encodes both
halves as one doubled batch, which may take another matmul kernel on the CPU: the same outputs to
float rounding."""

import pytest
import torch

from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.models.postprocess import build_batch_postprocessor
from lighthouse_audio.prediction.model import load_model
from tests.conftest import fixture_files

CHECKPOINTS = fixture_files("qd_detr_*.ckpt")
KEYS = ("pred_logits", "pred_spans", "saliency_scores")


def _both(model, inputs):
    model.batched_negative = False  # Lighthouse's order: positive pass, then negative pass
    with torch.inference_mode():
        model.negative_pass = True
        with_negative = model(**inputs)
        model.negative_pass = False
        without = model(**inputs)
    return with_negative, without


@pytest.mark.parametrize("ckpt", CHECKPOINTS, ids=lambda p: p.name)
def test_fixture_inputs_give_identical_outputs(ckpt):
    io = torch.load(str(ckpt).replace(".ckpt", "_io.pt"), weights_only=True)
    loaded = load_model(ckpt)
    assert loaded.model.negative_pass is False  # load_model switches it off
    with_negative, without = _both(loaded.model, io["inputs"])
    _assert_identical(with_negative, without)
    for a, b in zip(with_negative["aux_outputs"], without["aux_outputs"], strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert "saliency_scores_neg" not in without


@pytest.mark.parametrize("batch,frames", [(1, 7), (5, 30), (16, 75)])
def test_random_padded_batches_give_identical_outputs(batch, frames):
    from lighthouse_audio.config import load_config

    opt = load_config("qd_detr", "clotho-moment", "clap", [])
    torch.manual_seed(batch)
    model = build_model_bundle(opt).model.eval()
    lengths = torch.randint(1, frames + 1, (batch,))
    tokens = torch.randint(1, 12, (batch,))
    inputs = {
        "src_txt": torch.randn(batch, 12, 768),
        "src_txt_mask": (torch.arange(12) < tokens[:, None]).float(),
        "src_vid": torch.rand(batch, frames, 2),
        "src_vid_mask": (torch.arange(frames) < lengths[:, None]).float(),
        "src_aud": torch.randn(batch, frames, 768),
        "src_aud_mask": (torch.arange(frames) < lengths[:, None]).float(),
    }
    with_negative, without = _both(model, inputs)
    _assert_identical(with_negative, without)
    metas = [{"qid": i, "query": "q", "vid": "v", "duration": 60.0} for i in range(batch)]
    postprocessor = build_batch_postprocessor(opt)
    assert postprocessor(with_negative, metas) == postprocessor(without, metas)
    model.batched_negative = True  # the training default: one doubled batch
    with torch.inference_mode():
        model.negative_pass = True
        doubled = model(**inputs)
    for key in KEYS:
        torch.testing.assert_close(doubled[key], without[key], atol=1e-5, rtol=0)


def _assert_identical(with_negative, without):
    for key in KEYS:
        assert torch.equal(with_negative[key], without[key]), key
