from __future__ import annotations

import pytest
import torch

from lighthouse_audio.align.align_feature import evaluate_space
from lighthouse_audio.align.embed import ClipFeatures
from lighthouse_audio.align.train import HeadsConfig, fold_standardization, head_specs, train_heads
from lighthouse_audio.joint.space import JointSpace, build_head


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_fold_standardization_is_exact(kind):
    torch.manual_seed(0)
    spec = head_specs(HeadsConfig(kind=kind, hidden_dim=8, dim=4), 6, 5)["audio"]
    head = build_head(spec)
    x = torch.randn(10, 6) * 7 + 3
    mean, std = x.mean(0), x.std(0)
    expected = head((x - mean) / std)
    fold_standardization(head, mean, std)
    torch.testing.assert_close(head(x), expected, rtol=1e-5, atol=1e-5)


def _hidden_linear_problem(num_clips: int, seed: int):
    """Clip c has a latent z_c; audio windows = A z_c + noise (offset, scaled), caption = T z_c."""
    g = torch.Generator().manual_seed(seed)
    mix_a, mix_t = torch.randn(12, 8, generator=g), torch.randn(10, 8, generator=g)
    z = torch.randn(num_clips, 8, generator=g)
    audio = [(mix_a @ z_c).expand(3, 12) + 0.05 * torch.randn(3, 12, generator=g) for z_c in z]
    audio = [50.0 + 20.0 * a for a in audio]  # raw rows far from unit scale, as stored ones are
    text = [(mix_t @ z_c)[None] for z_c in z]
    return audio, text


def _space(cfg: HeadsConfig) -> JointSpace:
    specs = head_specs(cfg, 12, 10)
    return JointSpace("t", build_head(specs["audio"]), build_head(specs["text"]), "mean", specs)


def test_hidden_linear_relation_is_recovered_and_reproducible():
    cfg = HeadsConfig(kind="linear", dim=8, epochs=150, batch_size=32, seed=3)
    audio, text = _hidden_linear_problem(160, seed=0)
    space = _space(cfg)
    history = train_heads(space, audio[:128], text[:128], cfg, progress=False)
    assert not space.training and 0.0 < history["temperature"] < 1.0
    held = ClipFeatures(audio=[a.numpy() for a in audio[128:]],
                        text=[[t.numpy()] for t in text[128:]])  # fmt: skip
    recall = evaluate_space(space, held)
    assert recall["text_to_audio"]["recall@1"] >= 0.8, recall
    assert recall["text_to_audio"]["recall@5"] > 0.95, recall

    again = _space(cfg)
    train_heads(again, audio[:128], text[:128], cfg, progress=False)
    for key, value in space.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_input_norm_space_learns_from_rows_of_any_scale():
    """``input_norm`` heads see unit rows: rows stored at arbitrary scales still align, and the
    trained space gives the same similarities on raw and on L2-normalised rows."""
    cfg = HeadsConfig(kind="linear", dim=8, epochs=150, batch_size=32, seed=3)
    audio, text = _hidden_linear_problem(160, seed=0)
    g = torch.Generator().manual_seed(1)
    audio = [(a - 50.0) * (0.1 + 10 * torch.rand(len(a), 1, generator=g)) for a in audio]
    specs = head_specs(cfg, 12, 10)
    space = JointSpace("t", build_head(specs["audio"]), build_head(specs["text"]), "mean", specs,
                       input_norm=True)  # fmt: skip
    pooled = [space.text_rows(t[:, None]) for t in text[:128]]
    train_heads(space, audio[:128], pooled, cfg, progress=False)
    held = ClipFeatures(audio=[a.numpy() for a in audio[128:]],
                        text=[[t.numpy()] for t in text[128:]])  # fmt: skip
    assert evaluate_space(space, held)["text_to_audio"]["recall@1"] >= 0.8
    rows = torch.cat(audio[128:])
    torch.testing.assert_close(
        space.embed_audio(rows), space.embed_audio(torch.nn.functional.normalize(rows, dim=-1))
    )


def test_fixed_temperature_and_thread_count_restored():
    threads = torch.get_num_threads()
    cfg = HeadsConfig(kind="linear", dim=4, epochs=2, temperature=0.1)
    audio, text = _hidden_linear_problem(8, seed=1)
    history = train_heads(_space(cfg), audio, text, cfg, progress=False)
    assert history["temperature"] == pytest.approx(0.1)
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="at least 2 training clips"):
        train_heads(_space(cfg), audio[:1], text[:1], cfg, progress=False)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"epochs": 0}, "epochs must be > 0, got 0"),
        ({"batch_size": 1}, "batch_size must be >= 2"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"kind": "conv"}, "head kind must be 'mlp' or 'linear'"),
    ],
)
def test_config_is_checked(bad, message):
    with pytest.raises(ValueError, match=message):
        HeadsConfig(**bad)
