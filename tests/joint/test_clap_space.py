"""The ``clap`` joint space against the MS-CLAP encoder's own pooled outputs (random weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lighthouse_audio.registry import FEATURES

CAPTIONS = ["a dog barks twice", "rain falls on a tin roof, then thunder"]


def _unit(x: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.from_numpy(x), dim=-1)


@pytest.fixture(scope="module")
def clap_space(msclap_weights):
    return FEATURES.get("clap").joint_space(path=msclap_weights)


def test_audio_head_is_the_encoders_projection(clap_space, clap_encoder):
    windows = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 44100)).astype(np.float32)
    stored = torch.from_numpy(clap_encoder.encode_audio_windows(windows))
    embedded = clap_space.embed_audio(stored)
    assert embedded.shape == (2, 1024)
    expected = _unit(clap_encoder.encode_audio_pooled(windows))
    torch.testing.assert_close(embedded, expected, rtol=0, atol=1e-5)


def test_text_head_pools_eot_like_the_encoder(clap_space, clap_encoder):
    expected = _unit(clap_encoder.encode_text_pooled(CAPTIONS))
    for tokens, want in zip(clap_encoder.encode_text(CAPTIONS), expected, strict=True):
        torch.testing.assert_close(
            clap_space.embed_text(torch.from_numpy(tokens)), want, rtol=0, atol=1e-5
        )


def test_exclamation_mark_quirk_is_not_reproduced(clap_space, clap_encoder):
    """msclap pools one token before EOT per ``!``; stored tokens carry no ids, so the space
    always pools EOT (documented in lighthouse_audio.joint.clap)."""
    (tokens,) = clap_encoder.encode_text(["wow!"])
    eot = clap_space.embed_text(torch.from_numpy(tokens))
    with torch.inference_mode():
        by_hand = torch.nn.functional.normalize(
            clap_space.text_head(torch.from_numpy(tokens[-1])), dim=-1
        )
        shifted = torch.nn.functional.normalize(
            clap_space.text_head(torch.from_numpy(tokens[-2])), dim=-1
        )
    torch.testing.assert_close(eot, by_hand)
    torch.testing.assert_close(_unit(clap_encoder.encode_text_pooled(["wow!"]))[0], shifted,
                               rtol=0, atol=1e-5)  # fmt: skip


def test_space_settings(clap_space, clap_encoder):
    assert (clap_space.feature, clap_space.text_pooling) == ("clap", "last")
    assert clap_space.meta["logit_scale"] == pytest.approx(clap_encoder.logit_scale)
    assert not clap_space.training
    assert not any(p.requires_grad for p in clap_space.parameters())


def test_missing_weights_same_error_as_encoder(tmp_path):
    missing = tmp_path / "nope.pth"
    spec = FEATURES.get("clap")
    with pytest.raises(FileNotFoundError) as from_encoder:
        spec.encoder(weights=missing)
    with pytest.raises(FileNotFoundError) as from_space:
        spec.joint_space(path=missing)
    assert str(from_space.value) == str(from_encoder.value)
    assert "\n" not in str(from_space.value)
