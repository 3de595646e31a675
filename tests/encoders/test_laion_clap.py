"""laion-clap on a tiny randomly initialised ClapModel saved to disk (no hub access)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from lighthouse_audio.encoders import laion_clap  # noqa: E402
from lighthouse_audio.registry import FEATURES  # noqa: E402
from tests.encoders.tiny_hf import write_roberta_tokenizer  # noqa: E402

SAMPLE_RATE = 8000
TEXTS = ["a dog barks", "rain falls on the roof", "a bird sings"]


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory) -> Path:
    """A ClapModel with 16-d projections, 32-d towers and an 8 kHz, 16-mel feature extractor."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    folder = tmp_path_factory.mktemp("tiny-clap")
    tokenizer = write_roberta_tokenizer(folder / "tokenizer", model_max_length=32)
    config = ClapConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            max_position_embeddings=40,
            projection_dim=16,
        ),
        audio_config=dict(
            spec_size=64,
            num_mel_bins=16,
            window_size=4,
            patch_size=2,
            patch_stride=2,
            patch_embeds_hidden_size=16,
            hidden_size=32,
            depths=[1, 1],
            num_attention_heads=[2, 2],
            num_hidden_layers=2,
            projection_dim=16,
        ),
        projection_dim=16,
    )
    torch.manual_seed(0)
    ClapModel(config).eval().save_pretrained(folder)
    extractor = ClapFeatureExtractor(
        feature_size=16,
        sampling_rate=SAMPLE_RATE,
        hop_length=80,
        max_length_s=1,
        fft_window_size=256,
        frequency_min=0,
        frequency_max=SAMPLE_RATE // 2,
        truncation="rand_trunc",  # unfused checkpoints (laion/clap-htsat-unfused) use it too
    )
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def encoder(clap_dir) -> laion_clap.LaionClapEncoder:
    return FEATURES.get("laion-clap").encoder(model=clap_dir)


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.5, 0.5, (5, SAMPLE_RATE)).astype(np.float32)


def test_feature_registered():
    spec = FEATURES.get("laion-clap")
    assert spec is laion_clap.FEATURE and spec.domain == "audio"


def test_yaml_dims_match_clap_config_defaults():
    from transformers import ClapConfig

    from lighthouse_audio.config import config_root, read_yaml

    config = ClapConfig()
    yaml = read_yaml(config_root() / "feature" / "laion-clap.yml")
    assert (config.projection_dim, config.text_config.hidden_size) == (
        yaml["a_feat_dim"],
        yaml["t_feat_dim"],
    )


def test_dims_come_from_the_model(encoder):
    assert (encoder.sample_rate, encoder.audio_dim, encoder.text_dim) == (SAMPLE_RATE, 16, 32)
    assert (encoder.window, encoder.hop, encoder.frames) == (1.0, 1.0, "center")


def test_audio_matches_clap_forward(encoder, windows):
    """Projected windows == ClapModel's own audio_embeds; text_pooled == its text_embeds."""
    processor = encoder.processor
    inputs = processor.feature_extractor(
        list(windows), sampling_rate=SAMPLE_RATE, return_tensors="pt"
    )
    text = processor.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = encoder.model(
            input_ids=text["input_ids"],
            attention_mask=text["attention_mask"],
            input_features=inputs["input_features"],
            is_longer=inputs["is_longer"],
        )
    audio = encoder.encode_audio_windows(windows)
    assert audio.shape == (len(windows), 16) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, out.audio_embeds.numpy(), atol=1e-5)
    np.testing.assert_allclose(encoder.encode_audio_pooled(windows), audio, atol=1e-6)
    np.testing.assert_allclose(
        encoder.encode_text_pooled(TEXTS), out.text_embeds.numpy(), atol=1e-5
    )


def test_audio_deterministic_and_batch_invariant(encoder, windows):
    batched = encoder.encode_audio_windows(windows)
    np.testing.assert_array_equal(encoder.encode_audio_windows(windows), batched)
    one_by_one = np.concatenate([encoder.encode_audio_windows(w[None]) for w in windows[:2]])
    np.testing.assert_allclose(one_by_one, batched[:2], atol=1e-5)
    assert encoder.encode_audio_windows(np.zeros((0, SAMPLE_RATE), np.float32)).shape == (0, 16)
    with pytest.raises(ValueError, match="num_windows, samples"):
        encoder.encode_audio_windows(windows[0])


def test_pre_projection_output(clap_dir, windows):
    encoder = laion_clap.LaionClapEncoder(clap_dir, audio_output="pooled")
    assert encoder.audio_dim == 32
    inputs = encoder.processor.feature_extractor(
        list(windows), sampling_rate=SAMPLE_RATE, return_tensors="pt"
    )
    with torch.no_grad():
        expected = encoder.model.audio_model(input_features=inputs["input_features"]).pooler_output
    np.testing.assert_allclose(encoder.encode_audio_windows(windows), expected.numpy(), atol=1e-5)


def test_text_tokens(encoder, monkeypatch):
    tokens = encoder.encode_text(TEXTS)
    for text, states in zip(TEXTS, tokens, strict=True):
        ids = encoder.processor.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            expected = encoder.model.text_model(**ids).last_hidden_state[0]
        assert states.shape == (ids["input_ids"].shape[1], 32)  # <s> ... </s>
        np.testing.assert_allclose(states, expected.numpy(), atol=1e-5)
    monkeypatch.setattr(encoder, "text_mode", "pooled")
    pooled = encoder.encode_text(TEXTS)
    assert [p.shape for p in pooled] == [(1, 16)] * len(TEXTS)
    np.testing.assert_allclose(np.concatenate(pooled), encoder.encode_text_pooled(TEXTS))


def test_weights_id(encoder, clap_dir):
    weights_id = encoder.weights_id()
    assert weights_id.startswith(f"{clap_dir.name}@") and len(weights_id.split("@")[1]) == 12


def test_weights_option_is_the_model(clap_dir):
    assert laion_clap.build_laion_clap_encoder(weights=clap_dir).joint_dim == 16
    with pytest.raises(ValueError, match="not both"):
        laion_clap.build_laion_clap_encoder(weights=clap_dir, model=clap_dir)


def test_missing_model_is_one_clear_line(tmp_path):
    for missing in (tmp_path / "absent", "no-such-org/no-such-clap"):
        with pytest.raises(FileNotFoundError, match="cannot load CLAP model") as info:
            laion_clap.LaionClapEncoder(missing)
        assert "\n" not in str(info.value) and "allow_download=True" in str(info.value)
