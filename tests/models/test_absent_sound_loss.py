"""The absent-sound loss (``neg_label_loss_coef``): QD-DETR also decodes its negative pairs
(sample i with text i+1, whose sound is not in clip i) and learns "background" for all of their
queries, so a query whose sound is absent gets no confident moment. Off by default: Lighthouse's
QD-DETR and its losses are unchanged (the parity tests run with the default)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lighthouse_audio.config import load_config
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.models.criterion import BACKGROUND_LABEL, build_weight_dict

KEYS = ("pred_logits", "pred_spans", "saliency_scores", "saliency_scores_neg")


def _inputs(batch: int = 4, frames: int = 20) -> dict[str, torch.Tensor]:
    lengths = torch.randint(5, frames + 1, (batch,))
    mask = (torch.arange(frames) < lengths[:, None]).float()
    return {
        "src_txt": torch.randn(batch, 9, 768),
        "src_txt_mask": (torch.arange(9) < torch.randint(2, 10, (batch,))[:, None]).float(),
        "src_vid": torch.rand(batch, frames, 2),
        "src_vid_mask": mask,
        "src_aud": torch.randn(batch, frames, 768),
        "src_aud_mask": mask,
    }


def _bundle(coef: float):
    torch.manual_seed(0)
    opt = load_config("qd_detr", "clotho-moment", "clap", [f"neg_label_loss_coef={coef}"])
    return opt, build_model_bundle(opt)


def test_off_by_default_and_lighthouse_weights_unchanged() -> None:
    opt, bundle = _bundle(0.0)
    assert bundle.model.decode_negative is False
    out = bundle.model.eval()(**_inputs())
    assert "pred_logits_neg" not in out
    assert "loss_label_neg" not in build_weight_dict(opt)
    default = load_config("qd_detr", "clotho-moment", "clap", [])
    assert build_weight_dict(default) == build_weight_dict(opt)


def test_decoding_the_negatives_leaves_the_positive_outputs_unchanged() -> None:
    _, plain = _bundle(0.0)
    opt, with_neg = _bundle(2.0)
    with_neg.model.load_state_dict(plain.model.state_dict())
    torch.manual_seed(1)
    inputs = _inputs()
    with torch.inference_mode():
        a = plain.model.eval()(**inputs)
        b = with_neg.model.eval()(**inputs)
    for key in KEYS:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-5)
    assert b["pred_logits_neg"].shape == a["pred_logits"].shape
    with_neg.model.negative_pass = False  # prediction: no negative pass, nothing extra
    assert "pred_logits_neg" not in with_neg.model(**inputs)
    assert build_weight_dict(opt)["loss_label_neg"] == 2.0
    assert "loss_label_neg_0" not in build_weight_dict(opt)  # final layer only


def test_loss_is_background_ce_and_training_lowers_absent_confidence() -> None:
    opt, bundle = _bundle(4.0)
    model, criterion = bundle.model.train(), bundle.criterion
    logits = torch.randn(3, 10, 2)
    want = F.cross_entropy(logits.reshape(-1, 2), torch.full((30,), BACKGROUND_LABEL))
    torch.testing.assert_close(criterion.loss_absent(logits), want)

    torch.manual_seed(2)
    inputs = _inputs()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def absent_confidence() -> float:
        with torch.no_grad():
            model.eval()
            out = model(**inputs)
            model.train()
        return out["pred_logits_neg"].softmax(-1)[..., 1 - BACKGROUND_LABEL].mean().item()

    before = absent_confidence()
    for _ in range(20):
        loss = criterion.loss_absent(model(**inputs)["pred_logits_neg"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert absent_confidence() < 0.5 * before
