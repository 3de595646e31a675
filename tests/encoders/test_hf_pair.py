"""hf: tiny random transformers models saved to disk (wav2vec 2.0, AST; BERT, RoBERTa)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from lighthouse_audio.encoders import hf_pair  # noqa: E402
from lighthouse_audio.registry import FEATURES  # noqa: E402
from tests.encoders.tiny_hf import write_bert_tokenizer, write_roberta_tokenizer  # noqa: E402

SAMPLE_RATE = 16000
TEXTS = ["a dog barks", "rain falls on the roof", "a bird sings loud"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Four tiny models with their extractors/tokenizers, each in its own folder."""
    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTModel,
        BertConfig,
        BertModel,
        RobertaConfig,
        RobertaModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
    )

    root = tmp_path_factory.mktemp("tiny-hf")
    torch.manual_seed(0)
    small = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    folders = {name: root / name for name in ("wav2vec2", "ast", "bert", "roberta")}

    wav2vec2 = Wav2Vec2Config(
        hidden_size=24,
        conv_dim=(16, 16),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        do_stable_layer_norm=True,
        **small,
    )
    Wav2Vec2Model(wav2vec2).eval().save_pretrained(folders["wav2vec2"])
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE).save_pretrained(folders["wav2vec2"])

    ast = ASTConfig(hidden_size=20, num_mel_bins=16, max_length=24, patch_size=8, **small)
    ASTModel(ast).eval().save_pretrained(folders["ast"])
    ASTFeatureExtractor(num_mel_bins=16, max_length=24).save_pretrained(folders["ast"])

    bert_tokenizer = write_bert_tokenizer(folders["bert"])
    bert = BertConfig(vocab_size=len(bert_tokenizer), hidden_size=28, **small)
    BertModel(bert).eval().save_pretrained(folders["bert"])

    roberta_tokenizer = write_roberta_tokenizer(folders["roberta"])
    roberta = RobertaConfig(
        vocab_size=len(roberta_tokenizer), hidden_size=32, max_position_embeddings=40, **small
    )
    RobertaModel(roberta).eval().save_pretrained(folders["roberta"])
    return folders


@pytest.fixture(scope="module")
def encoder(models) -> hf_pair.HFPairEncoder:
    return FEATURES.get("hf").encoder(audio_model=models["wav2vec2"], text_model=models["bert"])


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.5, 0.5, (4, SAMPLE_RATE)).astype(np.float32)


def test_feature_registered():
    spec = FEATURES.get("hf")
    assert spec is hf_pair.FEATURE and spec.domain == "audio"


def test_dims_discovered_from_configs(encoder):
    assert (encoder.sample_rate, encoder.audio_dim, encoder.text_dim) == (SAMPLE_RATE, 24, 28)
    assert (encoder.window, encoder.hop, encoder.frames) == (1.0, 1.0, "center")


def test_audio_is_time_mean_of_last_hidden_state(encoder, windows):
    inputs = encoder.feature_extractor(
        list(windows), sampling_rate=SAMPLE_RATE, return_tensors="pt"
    )
    with torch.no_grad():
        expected = encoder.audio_net(**inputs).last_hidden_state.mean(dim=1).numpy()
    got = encoder.encode_audio_windows(windows)
    assert got.shape == (len(windows), 24) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_array_equal(encoder.encode_audio_windows(windows), got)
    one_by_one = np.concatenate([encoder.encode_audio_windows(w[None]) for w in windows[:2]])
    np.testing.assert_allclose(one_by_one, got[:2], atol=1e-5)
    with pytest.raises(ValueError, match="num_windows, samples"):
        encoder.encode_audio_windows(windows[0])


def test_text_tokens_keep_special_tokens(encoder):
    tokens = encoder.encode_text(TEXTS)
    for text, states in zip(TEXTS, tokens, strict=True):
        ids = encoder.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            expected = encoder.text_net(**ids).last_hidden_state[0].numpy()
        assert states.shape == (ids["input_ids"].shape[1], 28)  # [CLS] ... [SEP]
        np.testing.assert_allclose(states, expected, atol=1e-5)


def test_text_mode_pooled(encoder, monkeypatch):
    monkeypatch.setattr(encoder, "text_mode", "pooled")
    pooled = encoder.encode_text(TEXTS)
    assert [p.shape for p in pooled] == [(1, 28)] * len(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(np.concatenate(pooled), axis=1), 1.0, atol=1e-5)


def test_no_joint_space(encoder, windows):
    with pytest.raises(NotImplementedError):
        encoder.encode_text_pooled(TEXTS)
    with pytest.raises(NotImplementedError):
        encoder.encode_audio_pooled(windows)


def test_ast_and_roberta_with_pooler(models, windows):
    encoder = hf_pair.HFPairEncoder(
        models["ast"], models["roberta"], audio_pooling="pooler", batch_size=3
    )
    assert (encoder.sample_rate, encoder.audio_dim, encoder.text_dim) == (SAMPLE_RATE, 20, 32)
    inputs = encoder.feature_extractor(
        list(windows), sampling_rate=SAMPLE_RATE, return_tensors="pt"
    )
    with torch.no_grad():
        expected = encoder.audio_net(**inputs).pooler_output.numpy()
    np.testing.assert_allclose(encoder.encode_audio_windows(windows), expected, atol=1e-5)
    (states,) = encoder.encode_text(["a dog barks"])
    assert states.shape == (5, 32)  # <s> a Ġdog Ġbarks </s>


def test_weights_id(encoder):
    audio, text = encoder.weights_id().split("+")
    assert audio.startswith("wav2vec2@") and text.startswith("bert@")
    assert len(audio.split("@")[1]) == len(text.split("@")[1]) == 12


def test_factory_errors(models):
    with pytest.raises(ValueError, match="needs text_model"):
        hf_pair.build_hf_pair_encoder(audio_model=models["wav2vec2"])
    with pytest.raises(ValueError, match="two models"):
        hf_pair.build_hf_pair_encoder(weights="x")
    with pytest.raises(FileNotFoundError, match="cannot load audio feature extractor"):
        hf_pair.HFPairEncoder(models["bert"].parent / "absent", models["bert"])
