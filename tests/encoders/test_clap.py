"""MS-CLAP 2023 encoder: parity with msclap 1.3.4 (``msclap2023_io.pt``, random weights).

Unmarked tests need no weights (front end, tokenizer, key mapping on the manifest's shapes,
error messages). The parity tests run HTSAT and GPT-2 on the regenerated weights (see conftest).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from lighthouse_audio.encoders import clap
from lighthouse_audio.encoders.clap.frontend import (
    ClapLogMel,
    dft_kernels,
    num_stft_frames,
    slaney_mel_filterbank,
)
from lighthouse_audio.encoders.clap.tokenizer import msclap_tokenize
from lighthouse_audio.encoders.clap.weights import (
    LEGACY_GPT2_BUFFER,
    WEIGHTS_ENV,
    check_state_dict,
    convert_msclap_state_dict,
    find_clap_weights,
    find_gpt2_tokenizer,
    load_clap_weights,
)
from tests.encoders.conftest import MSCLAP_VARIANT, fixture_texts

ATOL = 1e-5
# torch.stft vs torchlibrosa's Conv1d DFT: up to ~2e-4 dB in near-silent bins (README §5).
FFT_LOGMEL_ATOL = 5e-4
TEXTS = fixture_texts()
AUDIO_CASES = {  # io key prefix -> how the input is made from io.pt
    "win1s": lambda io: io["win1s_input"],
    "full3s": lambda io: io["wave_3s"][None],
    "full7s": lambda io: io["wave_7s"][None],
    "full10s": lambda io: io["wave_10s"][None],
}
NOT_FOUND = (
    "msclap-2023: not in the cache and downloads are off (LIGHTHOUSE_AUDIO_OFFLINE=1); download "
    "https://huggingface.co/microsoft/msclap/resolve/main/CLAP_weights_2023.pth and put it at "
)


def _max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def _manifest_entry(manifest: dict, key: str) -> dict:
    return next(e for e in manifest["tiny"]["keys"] if e["key"] == key)


def _meta_state(manifest: dict, variant: str) -> dict[str, torch.Tensor]:
    dtypes = {"float32": torch.float32, "int64": torch.int64, "bool": torch.bool}
    return {
        e["key"]: torch.empty(e["shape"], dtype=dtypes[e["dtype"]], device="meta")
        for e in manifest[variant]["keys"]
    }


@pytest.fixture
def empty_hf_cache(monkeypatch, tmp_path):
    """No env override and an empty Hugging Face cache, whatever the machine has."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(clap.TOKENIZER_ENV, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LIGHTHOUSE_AUDIO_CACHE", str(tmp_path / "lighthouse-cache"))
    return tmp_path / "hub"


def _fake_hf_snapshot(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return snapshot


# ----------------------------------------------------------------------------- front end


def test_filterbank_and_kernels_match_msclap_tensors(msclap_manifest):
    """Our librosa-free Slaney filterbank and DFT kernels against the sums of msclap's."""
    prefix = "audio_encoder.base.htsat."
    mel = slaney_mel_filterbank().double()
    entry = _manifest_entry(msclap_manifest, prefix + "logmel_extractor.melW")
    assert list(mel.shape) == entry["shape"] == [513, 64]
    assert mel.sum().item() == pytest.approx(entry["sum"], rel=1e-6)
    assert mel.abs().sum().item() == pytest.approx(entry["abs_sum"], rel=1e-6)
    for kernel, name in zip(dft_kernels(), ("conv_real", "conv_imag"), strict=True):
        entry = _manifest_entry(
            msclap_manifest, f"{prefix}spectrogram_extractor.stft.{name}.weight"
        )
        assert list(kernel.shape) == entry["shape"]
        assert kernel.double().abs().sum().item() == pytest.approx(entry["abs_sum"], rel=1e-6)


@pytest.mark.parametrize("case", sorted(AUDIO_CASES))
def test_logmel_parity(msclap_io, case):
    waveforms = AUDIO_CASES[case](msclap_io)
    expected = msclap_io[f"{case}_logmel"]
    assert expected.shape[2] == num_stft_frames(waveforms.shape[1])
    with torch.inference_mode():
        conv = ClapLogMel(stft="conv")(waveforms)
        fft = ClapLogMel()(waveforms)
    assert conv.shape == fft.shape == expected.shape
    assert _max_diff(conv, expected) <= ATOL
    assert _max_diff(fft, expected) <= FFT_LOGMEL_ATOL


def test_frontend_rejects_bad_input():
    with pytest.raises(ValueError, match="batch, num_samples"):
        ClapLogMel()(torch.zeros(44100))
    with pytest.raises(ValueError, match="more than 512 samples"):
        ClapLogMel()(torch.zeros(1, 100))
    with pytest.raises(ValueError, match="'fft' or 'conv'"):
        ClapLogMel(stft="librosa")


# ----------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def gpt2_tokenizer(gpt2_tokenizer_dir):
    pytest.importorskip("transformers")
    return clap.load_gpt2_tokenizer(gpt2_tokenizer_dir)


def test_tokenizer_matches_msclap(gpt2_tokenizer, msclap_io):
    input_ids, attention_mask = msclap_tokenize(gpt2_tokenizer, TEXTS)
    for variant in ("full", "tiny"):
        assert torch.equal(input_ids, msclap_io[f"text_{variant}_input_ids"])
        assert torch.equal(attention_mask, msclap_io[f"text_{variant}_attention_mask"])
        assert torch.equal(input_ids.ne(0).sum(-1) - 1, msclap_io[f"text_{variant}_pool_index"])

    # The README's quirks, where the fixture's texts show them (README section 7).
    if "wow!! a crowd cheers!" in TEXTS:  # "!" is msclap's pad token (id 0), attended to
        row = TEXTS.index("wow!! a crowd cheers!")
        assert input_ids[row, :10].tolist() == [42773, 0, 0, 257, 4315, 34550, 0, 220, 50256, 0]
        assert attention_mask[row].sum().item() == 9
        assert (input_ids.ne(0).sum(-1) - 1)[row].item() == 5  # " cheers", not EOT at 8
    if "Hello world" in TEXTS:  # no BOS; " " then EOT
        assert input_ids[TEXTS.index("Hello world"), :4].tolist() == [15496, 995, 220, 50256]


def test_tokenizer_does_not_truncate(gpt2_tokenizer):
    input_ids, attention_mask = msclap_tokenize(gpt2_tokenizer, [" ".join(["word"] * 100), "short"])
    assert input_ids.shape == attention_mask.shape == (2, 102)
    assert attention_mask.sum(-1).tolist() == [102, 3]
    assert input_ids[0, -1].item() == 50256
    with pytest.raises(ValueError, match="at most 64"):
        msclap_tokenize(gpt2_tokenizer, ["word " * 70], max_positions=64)
    empty_ids, empty_mask = msclap_tokenize(gpt2_tokenizer, [])
    assert empty_ids.shape == empty_mask.shape == (0, 77)


# ----------------------------------------------------------------------------- key mapping


def test_legacy_buffer_regex_is_anchored():
    assert LEGACY_GPT2_BUFFER.match("caption_encoder.base.h.0.attn.bias")
    assert LEGACY_GPT2_BUFFER.match("caption_encoder.base.h.11.attn.masked_bias")
    for kept in (
        "caption_encoder.base.h.0.attn.c_attn.bias",
        "caption_encoder.base.h.0.attn.c_proj.bias",
        "caption_encoder.base.h.0.mlp.c_fc.bias",
        "audio_encoder.base.htsat.layers.0.blocks.0.attn.qkv.bias",
        "xcaption_encoder.base.h.0.attn.bias",
    ):
        assert not LEGACY_GPT2_BUFFER.match(kept), kept
    converted = convert_msclap_state_dict(
        {
            "caption_encoder.base.h.0.attn.bias": torch.ones(1, 1, 4, 4, dtype=torch.bool),
            "caption_encoder.base.h.0.attn.masked_bias": torch.tensor(-1e4),
            "caption_encoder.base.h.0.attn.c_attn.bias": torch.zeros(6),
        }
    )
    assert list(converted.text) == ["h.0.attn.c_attn.bias"]


def test_qkv_split_is_query_key_value_along_rows():
    weight = torch.arange(6 * 2, dtype=torch.float32).view(6, 2)
    bias = torch.arange(6, dtype=torch.float32)
    prefix = "audio_encoder.base.htsat.layers.1.blocks.0.attn.qkv."
    audio = convert_msclap_state_dict({prefix + "weight": weight, prefix + "bias": bias}).audio
    target = "audio_encoder.layers.1.blocks.0.attention.self."
    for index, name in enumerate(("query", "key", "value")):
        assert torch.equal(audio[f"{target}{name}.weight"], weight[2 * index : 2 * index + 2])
        assert torch.equal(audio[f"{target}{name}.bias"], bias[2 * index : 2 * index + 2])


@pytest.mark.parametrize("variant", ["tiny", "full"])
def test_key_mapping_covers_manifest(msclap_manifest, variant):
    """Every ClapAudioModel / GPT2Model / projection tensor is filled, with the right shape,
    and only the documented tensors are left out."""
    pytest.importorskip("transformers")
    from transformers import GPT2Model

    parts = convert_msclap_state_dict(_meta_state(msclap_manifest, variant))
    with torch.device("meta"):
        htsat = clap.build_htsat()
        gpt2 = GPT2Model(clap.gpt2_config_for(parts.text))
        projection = clap.ClapProjection()
    expected_audio = htsat.state_dict()
    assert len(expected_audio) == 236
    assert set(parts.audio) == set(expected_audio)
    check_state_dict(expected_audio, parts.audio, "HTSAT", variant)
    assert set(parts.text) == set(gpt2.state_dict())
    check_state_dict(gpt2.state_dict(), parts.text, "GPT-2", variant)
    assert gpt2.config.n_layer == msclap_manifest[variant]["n_layer_gpt2"]
    for part in (parts.audio_projection, parts.text_projection):
        assert set(part) == set(projection.state_dict())
        check_state_dict(projection.state_dict(), part, "projection", variant)
    assert parts.mel_filterbank is not None and parts.logit_scale is not None
    dropped = {
        "attn_mask": 5,
        "tscam_conv.": 2,
        "head.": 2,
        "spectrogram_extractor.": 2,
        "logmel_extractor.": 1,
        "attn.bias": msclap_manifest[variant]["n_layer_gpt2"],
        "attn.masked_bias": msclap_manifest[variant]["n_layer_gpt2"],
    }
    for fragment, count in dropped.items():
        assert sum(fragment in key for key in parts.ignored) == count, fragment
    assert len(parts.ignored) == sum(dropped.values())


def test_wrong_shape_is_one_line(msclap_manifest):
    pytest.importorskip("transformers")
    parts = convert_msclap_state_dict(_meta_state(msclap_manifest, "tiny"))
    key = "audio_encoder.layers.2.blocks.3.attention.self.key.weight"
    parts.audio[key] = torch.empty(10, 384, device="meta")
    with torch.device("meta"):
        expected = clap.build_htsat().state_dict()
    with pytest.raises(ValueError) as err:
        check_state_dict(expected, parts.audio, "HTSAT (ClapAudioModel)", "w.pth")
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "w.pth is not an MS-CLAP 2023 checkpoint: HTSAT (ClapAudioModel) tensor "
        f"{key} has shape (10, 384), expected (384, 384)"
    )


# ----------------------------------------------------------------------------- locating files


def test_weights_not_found_offline_says_where_to_put_them(empty_hf_cache):
    from lighthouse_audio.hub import OfflineError
    from lighthouse_audio.hub.download import hub_cache_dir

    with pytest.raises(OfflineError) as err:
        find_clap_weights()
    assert str(err.value) == NOT_FOUND + str(hub_cache_dir() / "files" / clap.HF_FILENAME)


def test_weights_placed_in_the_cache_by_hand_are_used(empty_hf_cache):
    from lighthouse_audio.hub.download import hub_cache_dir

    placed = hub_cache_dir() / "files" / clap.HF_FILENAME
    placed.parent.mkdir(parents=True, exist_ok=True)
    placed.write_bytes(b"weights")
    try:
        assert find_clap_weights() == placed
    finally:
        placed.unlink()


def test_weights_lookup_order(empty_hf_cache, monkeypatch, tmp_path):
    cached = _fake_hf_snapshot(empty_hf_cache, "microsoft/msclap", {clap.HF_FILENAME: b"x"})
    assert find_clap_weights() == cached / clap.HF_FILENAME
    from_env = tmp_path / "env.pth"
    from_env.write_bytes(b"x")
    monkeypatch.setenv(WEIGHTS_ENV, str(from_env))
    assert find_clap_weights() == from_env
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"x")
    assert find_clap_weights(explicit) == explicit
    with pytest.raises(FileNotFoundError) as err:
        find_clap_weights(tmp_path / "nope.pth")
    assert str(err.value).startswith(f"MS-CLAP 2023 weights not found at {tmp_path / 'nope.pth'}")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "gone.pth"))
    with pytest.raises(FileNotFoundError, match=f"gone.pth \\({WEIGHTS_ENV}\\)"):
        find_clap_weights()


def test_tokenizer_lookup(empty_hf_cache, monkeypatch, tmp_path, gpt2_tokenizer_dir):
    from lighthouse_audio.hub import OfflineError

    with pytest.raises(OfflineError) as err:
        find_gpt2_tokenizer()
    assert str(err.value).startswith("gpt2-vocab: not in the cache and downloads are off")
    assert "openai-community/gpt2/resolve/main/vocab.json" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="missing merges.txt"):
        (tmp_path / "half").mkdir()
        (tmp_path / "half" / "vocab.json").write_text("{}")
        find_gpt2_tokenizer(tmp_path / "half")
    files = {name: b"x" for name in ("vocab.json", "merges.txt")}
    snapshot = _fake_hf_snapshot(empty_hf_cache, "openai-community/gpt2", files)
    assert find_gpt2_tokenizer() == snapshot
    monkeypatch.setenv(clap.TOKENIZER_ENV, str(gpt2_tokenizer_dir))
    assert find_gpt2_tokenizer() == gpt2_tokenizer_dir


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"<html>not a checkpoint</html>", "is not a readable MS-CLAP 2023 checkpoint"),
        ([1, 2, 3], "expected a dict with a 'model' state dict, got list"),
        ({"state_dict": {}}, "expected a dict with a 'model' state dict, got a dict with keys"),
        ({"model": {"encoder.weight": torch.zeros(2)}}, "has no 'audio_encoder.base.htsat.*'"),
    ],
)
def test_wrong_file_is_one_line(tmp_path, content, fragment):
    path = tmp_path / "wrong.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ValueError) as err:
        load_clap_weights(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and fragment in message


def test_legacy_zip_less_file_loads(tmp_path):
    """Files from old ``torch.save`` cannot be memory-mapped; they load the slow way."""
    path = tmp_path / "legacy.pth"
    state = {"audio_encoder.base.htsat.bn0.weight": torch.ones(64)}
    torch.save({"model": state, "epoch": 3}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(
        load_clap_weights(path)["audio_encoder.base.htsat.bn0.weight"], torch.ones(64)
    )


def test_missing_keys_is_one_line(tmp_path):
    pytest.importorskip("transformers")
    path = tmp_path / "partial.pth"
    torch.save({"model": {"audio_encoder.base.htsat.bn0.weight": torch.ones(64)}}, path)
    with pytest.raises(ValueError) as err:
        clap.build_clap_encoder(path, text=False)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"{path} is not an MS-CLAP 2023 checkpoint: 234 HTSAT (ClapAudioModel) tensors missing"
    )


# ----------------------------------------------------------------------------- full model


@pytest.fixture(scope="module")
def audio_outputs(clap_encoder, msclap_io):
    """``case -> (embedding, projected)`` computed once per module, in uneven batches of 3."""
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def get(case: str) -> tuple[np.ndarray, np.ndarray]:
        if case not in cache:
            clap_encoder.batch_size = 3
            embedding = clap_encoder.encode_audio_windows(AUDIO_CASES[case](msclap_io).numpy())
            with torch.inference_mode():
                projected = clap_encoder.audio_projection(torch.from_numpy(embedding)).numpy()
            cache[case] = (embedding, projected)
        return cache[case]

    return get


@pytest.mark.parametrize("case", sorted(AUDIO_CASES))
def test_audio_embedding_parity(audio_outputs, msclap_io, case):
    embedding, projected = audio_outputs(case)
    assert embedding.dtype == np.float32
    assert embedding.shape == tuple(msclap_io[f"{case}_embedding"].shape)
    assert _max_diff(embedding, msclap_io[f"{case}_embedding"]) <= ATOL
    assert _max_diff(projected, msclap_io[f"{case}_projected"]) <= ATOL


def test_encode_audio_pooled(clap_encoder, msclap_io):
    pooled = clap_encoder.encode_audio_pooled(msclap_io["wave_3s"][None].numpy())
    assert pooled.shape == (1, 1024)
    assert _max_diff(pooled, msclap_io["full3s_projected"]) <= ATOL
    assert clap_encoder.encode_audio_windows(np.zeros((0, 44100), np.float32)).shape == (0, 768)


def test_text_parity(clap_encoder, msclap_io):
    expected = msclap_io[f"text_{MSCLAP_VARIANT}_last_hidden"]
    mask = msclap_io[f"text_{MSCLAP_VARIANT}_attention_mask"].bool()
    tokens = clap_encoder.encode_text(TEXTS)
    assert [t.shape for t in tokens] == [(9, 768), (14, 768), (4, 768), (9, 768)]
    for row, states in enumerate(tokens):
        assert states.dtype == np.float32
        assert _max_diff(states, expected[row][mask[row]]) <= ATOL
    pooled = clap_encoder.encode_text_pooled(TEXTS)
    assert _max_diff(pooled, msclap_io[f"text_{MSCLAP_VARIANT}_projected"]) <= ATOL


def test_weights_id_and_attributes(clap_encoder, msclap_weights, msclap_io):
    digest = hashlib.sha256(msclap_weights.read_bytes()).hexdigest()
    assert clap_encoder.weights_id() == digest[:16]
    assert (clap_encoder.name, clap_encoder.sample_rate, clap_encoder.frames) == (
        "clap",
        44100,
        "center",
    )
    assert (clap_encoder.audio_dim, clap_encoder.text_dim) == (768, 768)
    assert clap_encoder.logit_scale == pytest.approx(float(msclap_io["logit_scale"]))
    assert not clap_encoder.audio.training and not clap_encoder.text.training


@pytest.mark.gpu
def test_cuda_matches_cpu(clap_encoder, msclap_io):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    windows = msclap_io["win1s_input"].numpy()
    try:
        clap_encoder.to("cuda")
        embedding = clap_encoder.encode_audio_windows(windows)
        tokens = clap_encoder.encode_text(TEXTS)
    finally:
        clap_encoder.to("cpu")
    # cuDNN may run the patch-embedding convolution in TF32 (PyTorch's default).
    assert _max_diff(embedding, msclap_io["win1s_embedding"]) <= 1e-2
    assert tokens[0].shape == (9, 768)
