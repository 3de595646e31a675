"""M2D-CLAP 2025 (``m2d-clap``): parity with the original M2D runtime on random weights.

Expected values all come from the fixture (``m2d_clap2025_io.pt``, its README and manifest;
tolerances from its §10: 1e-4 abs on features, 5e-4 on the log-mel). Three tiers:

* no weights: folder-name configuration, front end, unit cutting, timestamps, file lookup, safe
  loading (tiny files);
* the checkpoint's tensors rebuilt in memory (``m2d_tensors``: ~1 s, ~800 MB RAM, no disk):
  every intermediate and output of the fixture, audio and text (~10 s on one core);
* the regenerated 794 MB file (``m2d_weights``: ~25 s once, then cached): loading it as users do
  and ``lighthouse extract`` end to end. Skipped with the reason when the disk is too small or
  ``LIGHTHOUSE_AUDIO_SKIP_M2D_CHECKPOINT=1``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from lighthouse_audio.encoders import m2d_clap
from lighthouse_audio.encoders.m2d_clap.audio import (
    column_means,
    frame_timestamps_ms,
    stacked_frames,
)
from lighthouse_audio.encoders.m2d_clap.config import MODEL_NAME, parse_model_name
from lighthouse_audio.encoders.m2d_clap.frontend import M2DLogMel, num_stft_frames
from lighthouse_audio.encoders.m2d_clap.vit import split_units
from lighthouse_audio.encoders.m2d_clap.weights import (
    TOKENIZER_ENV,
    WEIGHTS_ENV,
    WEIGHTS_NAME,
    build_projector,
    build_vit,
    find_bert_vocab,
    find_m2d_clap_weights,
    model_config,
    read_checkpoint,
    split_state_dict,
)
from tests.conftest import SHARED
from tests.encoders.conftest import m2d_tensors
from tests.hub.conftest import http_server, online  # noqa: F401 - fixtures used below

FEATURE_ATOL = 1e-4  # README §10: features within 1e-4 abs
LOGMEL_ATOL = 5e-4  # torch.stft vs nnAudio's conv1d DFT, near-silent bins (README §4)
AUDIO_KEYS = ["cow", "printer", "thunder12s", "syn1s", "syn3p3s"]
AMR_KEYS = ["printer", "thunder12s"]
RELEASE_ZIP = f"https://github.com/nttcslab/m2d/releases/download/v0.5.0/{MODEL_NAME}.zip"


def _max_diff(a, b) -> float:
    a = a.numpy() if isinstance(a, torch.Tensor) else a
    b = b.numpy() if isinstance(b, torch.Tensor) else b
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


# ----------------------------------------------------------------------------- configuration


def test_configuration_is_read_off_the_folder_name(m2d_manifest):
    config = parse_model_name(m2d_manifest["folder"])  # the folder the regen script writes
    assert config == parse_model_name(MODEL_NAME)
    assert (config.num_mels, config.unit_frames, config.patch_size) == (80, 1001, (16, 16))
    assert (config.sample_rate, config.extras) == (16000, ("B", "TI"))
    assert (config.text_encoder, config.text_weights_included) == ("bert", True)
    pos_embed = next(e for e in m2d_manifest["keys"] if e["key"] == "backbone.pos_embed")
    rows, columns = config.grid
    assert pos_embed["shape"] == [1, 1 + rows * columns, 768]  # README §2: 1 + 5 * 62

    # README §2: the 2024 model (no rate part: 16k; no extra: GTE), a 32 kHz variant.
    old = parse_model_name("m2d_clap_vit_base-80x608p16x16-240128")
    assert (old.unit_frames, old.sample_rate, old.extras, old.text_encoder) == (
        608, 16000, (), "gte"
    )  # fmt: skip
    assert parse_model_name("m2d_vit_base-80x1001p16x16p32k-240413").sample_rate == 32000
    for bad in ("checkpoint-30", "m2d-80by1001p16x16", "m2d-80x1001p16x16pfast", "-80x1001p16x16"):
        with pytest.raises(ValueError, match="is not an M2D model name") as err:
            parse_model_name(bad)
        assert "\n" not in str(err.value)


def test_config_docstring_example_runs():
    import doctest

    from lighthouse_audio.encoders.m2d_clap import config

    assert doctest.testmod(config).failed == 0


def test_model_config_comes_from_the_parent_folder(tmp_path):
    released = tmp_path / MODEL_NAME / "checkpoint-30.pth"
    assert model_config(released).extras == ("B", "TI")
    renamed = tmp_path / "downloads" / "checkpoint-30.pth"
    with pytest.raises(ValueError, match="keep the released folder name or pass --option "
                       f"model_name={MODEL_NAME}"):  # fmt: skip
        model_config(renamed)
    assert model_config(renamed, MODEL_NAME).grid == (5, 62)
    with pytest.raises(ValueError, match="only the 16 kHz, 80-mel front end"):
        model_config(tmp_path / "m2d_vit_base-80x1001p16x16p32k-x" / "checkpoint-30.pth")


# ----------------------------------------------------------------------------- front end


def test_mel_basis_is_the_reference_filterbank(m2d_io):
    assert _max_diff(M2DLogMel().mel_basis, m2d_io["mel_basis"]) <= 1e-8  # README: 1.9e-9


@pytest.mark.parametrize("key", AUDIO_KEYS)
def test_logmel_parity(m2d_io, key):
    wave = m2d_io[f"{key}_wave"][None]
    expected = m2d_io[f"{key}_logmel"]
    assert expected.shape[-1] == num_stft_frames(wave.shape[-1])
    with torch.inference_mode():
        logmel = M2DLogMel()(wave)
    assert logmel.shape == expected.shape
    assert _max_diff(logmel, expected) <= LOGMEL_ATOL


def test_frontend_rejects_bad_input():
    with pytest.raises(ValueError, match="batch, num_samples"):
        M2DLogMel()(torch.zeros(16000))
    with pytest.raises(ValueError, match="more than 200 samples"):
        M2DLogMel()(torch.zeros(1, 200))


@pytest.mark.parametrize(
    "frames, pad, columns",  # README §5's table
    [(101, 11, [7]), (212, 12, [14]), (331, 5, [21]), (1001, 0, [62]), (1201, 8, [62, 13])],
)
def test_units_pad_the_whole_sequence_and_cut_every_1001_frames(frames, pad, columns):
    lms = torch.randn(1, 1, 80, frames)
    units = split_units(lms, unit_frames=1001, patch_width=16)
    assert [u.shape[-1] // 16 for u in units] == columns
    assert sum(u.shape[-1] for u in units) == frames + pad
    joined = torch.cat(units, dim=-1)
    assert torch.equal(joined[..., :frames], lms)
    assert joined[..., frames:].abs().sum() == 0  # zero = the normalised mean, not silence


@pytest.mark.parametrize("key", AUDIO_KEYS)
def test_units_are_the_reference_chunks(m2d_io, key):
    units = split_units(m2d_io[f"{key}_lms_norm"], unit_frames=1001, patch_width=16)
    assert len(units) == int(m2d_io[f"{key}_n_chunks"])
    for index, unit in enumerate(units):
        assert torch.equal(unit, m2d_io[f"{key}_chunk{index}_input"])


@pytest.mark.parametrize("key", AUDIO_KEYS)
def test_frame_timestamps_spread_over_the_input(m2d_io, key):
    expected = m2d_io[f"{key}_timestamps_ms"][0]
    got = frame_timestamps_ms(m2d_io[f"{key}_wave"].shape[0], expected.shape[0])
    assert _max_diff(got, expected) <= 1e-3  # ms


# ----------------------------------------------------------------------------- in-memory weights


@pytest.fixture(scope="module")
def m2d_parts(m2d_regen, m2d_manifest):
    """The random checkpoint's ``model`` dict rebuilt in memory and routed as the loader does."""
    return split_state_dict(m2d_tensors(m2d_regen, m2d_manifest, ""))


@pytest.fixture(scope="module")
def memory_encoder(m2d_parts, bert_vocab_dir) -> m2d_clap.M2DClapEncoder:
    """The whole model from in-memory tensors; batches of 5 so 7 and 12 windows split unevenly."""
    pytest.importorskip("transformers")
    from lighthouse_audio.encoders.m2d_clap.text import build_bert, load_bert_tokenizer

    vit = build_vit(m2d_parts.vit, parse_model_name(MODEL_NAME), "memory")
    projector = build_projector(m2d_parts.projector, 768, "memory")
    return m2d_clap.M2DClapEncoder(
        m2d_clap.M2DClapAudio(vit, projector),
        build_bert(m2d_parts.text, "memory"),
        load_bert_tokenizer(bert_vocab_dir / "vocab.txt"),
        batch_size=5,
    )


def test_tensors_are_routed_as_the_reference_loader_does(m2d_parts, m2d_manifest):
    assert len(m2d_parts.vit) + len(m2d_parts.projector) == 166  # "using 166 parameters"
    assert len(m2d_parts.projector) == 15  # sem_token, 1 block (12), final norm (2)
    assert len(m2d_parts.text) == 199 and m2d_parts.ignored == []
    assert len(m2d_parts.vit) + len(m2d_parts.projector) + len(m2d_parts.text) == len(
        m2d_manifest["keys"]
    )


def test_model_settings_match_the_readme(memory_encoder, m2d_io):
    vit = memory_encoder.audio.vit
    assert _max_diff(vit.norm_stats, m2d_io["norm_stats"]) == 0
    assert len(vit.blocks) == 12 and vit.blocks[0].attn.num_heads == 12
    assert vit.norm.eps == vit.blocks[0].norm1.eps == 1e-6
    projector = memory_encoder.audio.projector
    assert len(projector.sem_blocks) == 1 and projector.sem_blocks[0].attn.num_heads == 1
    assert projector.norm.eps == projector.sem_blocks[0].norm1.eps == 1e-5
    assert projector.sem_blocks[0].mlp.fc1.out_features == 768  # mlp_ratio 1
    assert memory_encoder.text.config.num_hidden_layers == 12
    assert memory_encoder.text.config.layer_norm_eps == 1e-12
    assert not memory_encoder.audio.training and not memory_encoder.text.training


@pytest.mark.parametrize("key", AUDIO_KEYS)
def test_audio_parity(memory_encoder, m2d_io, key):
    """Every intermediate of README §5-6 for one clip: normalised log-mel, each chunk's patch
    embedding and encoder output, flat tokens, frames, stacked frames, scenes, joint space."""
    audio = memory_encoder.audio
    vit = audio.vit
    wave = m2d_io[f"{key}_wave"][None]
    with torch.inference_mode():
        lms = vit.normalize(audio.log_mel(wave))
        assert _max_diff(lms, m2d_io[f"{key}_lms_norm"]) <= FEATURE_ATOL
        for index in range(int(m2d_io[f"{key}_n_chunks"])):
            chunk = m2d_io[f"{key}_chunk{index}_input"]  # isolates the ViT from the front end
            expected = m2d_io[f"{key}_chunk{index}_patch_embed"]
            assert _max_diff(vit.patch_embed(chunk), expected) <= FEATURE_ATOL
            expected = m2d_io[f"{key}_chunk{index}_encoder_out"]
            assert _max_diff(vit.forward_unit(chunk), expected) <= FEATURE_ATOL
        units = audio.units(wave)  # from the waveform on
        flat = torch.cat(units, dim=1)
        assert flat.shape == m2d_io[f"{key}_flat"].shape
        assert _max_diff(flat, m2d_io[f"{key}_flat"]) <= FEATURE_ATOL
        frames = column_means(units, vit.grid[0])
        assert _max_diff(frames, m2d_io[f"{key}_frames768"]) <= FEATURE_ATOL
        stacked = stacked_frames(units, vit.grid[0])
        assert _max_diff(stacked, m2d_io[f"{key}_stacked3840"]) <= FEATURE_ATOL
        assert _max_diff(stacked.mean(1), m2d_io[f"{key}_scene3840"]) <= FEATURE_ATOL
        assert _max_diff(flat.mean(1), m2d_io[f"{key}_scene768"]) <= FEATURE_ATOL
        assert _max_diff(audio.projector(flat), m2d_io[f"{key}_clap_audio"]) <= FEATURE_ATOL
    pooled = memory_encoder.encode_audio_pooled(wave.numpy())
    assert pooled.shape == (1, 768) and pooled.dtype == np.float32
    assert _max_diff(pooled, m2d_io[f"{key}_clap_audio"]) <= FEATURE_ATOL


def test_per_frame_encoder_outputs_and_times(memory_encoder, m2d_io):
    frames, times = memory_encoder.encode_audio_frames(m2d_io["cow_wave"].numpy())
    assert frames.shape == (14, 768) and frames.dtype == np.float32
    assert _max_diff(frames, m2d_io["cow_frames768"][0]) <= FEATURE_ATOL
    assert _max_diff(times * 1000, m2d_io["cow_timestamps_ms"][0]) <= 1e-3


@pytest.mark.parametrize("key", AMR_KEYS)
def test_amr_window_features(memory_encoder, m2d_io, key):
    """README §8: one joint-space vector per 1 s window, batched (here in uneven batches)."""
    windows = m2d_io[f"amr_{key}_windows"]
    with torch.inference_mode():
        tokens = memory_encoder.audio.tokens(windows)
    assert _max_diff(tokens, m2d_io[f"amr_{key}_flat"]) <= FEATURE_ATOL
    features = memory_encoder.encode_audio_windows(windows.numpy())
    assert features.shape == tuple(m2d_io[f"amr_{key}_features"].shape)
    assert _max_diff(features, m2d_io[f"amr_{key}_features"]) <= FEATURE_ATOL
    l2 = features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-5)
    assert _max_diff(l2, m2d_io[f"amr_{key}_features_l2"]) <= FEATURE_ATOL
    empty = memory_encoder.encode_audio_windows(np.zeros((0, 16000), np.float32))
    assert empty.shape == (0, 768)


def test_text_parity(memory_encoder, m2d_io):
    from lighthouse_audio.encoders.m2d_clap.text import tokenize

    captions = list(m2d_io["captions"])
    input_ids, mask = tokenize(memory_encoder.tokenizer, captions, None)
    assert torch.equal(input_ids, m2d_io["text_input_ids"])
    assert torch.equal(mask, m2d_io["text_attention_mask"])
    bert = memory_encoder.text
    with torch.inference_mode():
        embedded = bert.embeddings(input_ids=input_ids)
        hidden = bert(input_ids=input_ids, attention_mask=mask).last_hidden_state
    assert _max_diff(embedded, m2d_io["text_embeddings_out"]) <= FEATURE_ATOL
    real = mask.bool()[..., None]  # padded positions are not defined
    assert _max_diff(hidden * real, m2d_io["text_last_hidden"] * real) <= FEATURE_ATOL

    tokens = memory_encoder.encode_text(captions)  # the AMR feature: 32 tokens at most
    for index, states in enumerate(tokens):
        expected = m2d_io[f"amr_text{index}_tokens"]
        assert states.dtype == np.float32 and states.shape == tuple(expected.shape)
        assert _max_diff(states, expected) <= FEATURE_ATOL
        ids, _ = tokenize(memory_encoder.tokenizer, [captions[index]], 32)
        assert torch.equal(ids[0], m2d_io[f"amr_text{index}_input_ids"])
    pooled = memory_encoder.encode_text_pooled(captions)  # untruncated [CLS]
    assert _max_diff(pooled, m2d_io["text_clap"]) <= FEATURE_ATOL


def test_joint_space_over_stored_features(memory_encoder, m2d_io):
    """The feature's joint space (identity heads, [CLS] of the stored tokens) gives the
    reference's audio-text cosine similarities; the third caption is longer than the 32 stored
    tokens, so its [CLS] saw less text than the reference's and is not compared."""
    from lighthouse_audio.registry import FEATURES

    space = FEATURES.get("m2d-clap").joint_space()
    assert space.text_pooling == "first"
    rows = torch.cat([m2d_io[f"{key}_clap_audio"] for key in ("cow", "printer", "thunder12s")])
    tokens = memory_encoder.encode_text(list(m2d_io["captions"]))
    for column in (0, 1):
        similarity = space.similarity(rows, torch.from_numpy(tokens[column]))
        assert _max_diff(similarity, m2d_io["sim_audio_text"][:, column]) <= FEATURE_ATOL


@pytest.mark.gpu
def test_cuda_matches_cpu(memory_encoder, m2d_io):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    try:
        memory_encoder.to("cuda")
        features = memory_encoder.encode_audio_windows(m2d_io["amr_printer_windows"].numpy())
        tokens = memory_encoder.encode_text(list(m2d_io["captions"]))
    finally:
        memory_encoder.to("cpu")
    # cuDNN/cuBLAS may run convolutions and matmuls in TF32 (PyTorch's defaults).
    assert _max_diff(features, m2d_io["amr_printer_features"]) <= 1e-2
    assert _max_diff(tokens[0], m2d_io["amr_text0_tokens"]) <= 1e-2


# ----------------------------------------------------------------------------- locating files


@pytest.fixture
def no_weights_env(monkeypatch, tmp_path):
    """No env override and an empty cache of this test's own, whatever the machine has."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(TOKENIZER_ENV, raising=False)
    monkeypatch.setenv("LIGHTHOUSE_AUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _cached_paths() -> tuple[Path, Path]:
    from lighthouse_audio.hub import PRETRAINED
    from lighthouse_audio.hub.fetch import archive_path, local_path

    artifact = PRETRAINED.get(WEIGHTS_NAME)
    return local_path(artifact), archive_path(artifact)


def test_offline_refusal_says_where_to_put_the_release(no_weights_env):
    from lighthouse_audio.hub import OfflineError

    member, archive = _cached_paths()
    assert member.parent.name == MODEL_NAME  # the folder name is the configuration
    with pytest.raises(OfflineError) as err:
        find_m2d_clap_weights()
    assert str(err.value) == (
        f"{WEIGHTS_NAME}: not in the cache and downloads are off (LIGHTHOUSE_AUDIO_OFFLINE=1); "
        f"download {RELEASE_ZIP} and put it at {archive} (unpacked on first use), or unzip it "
        f"so that {member} exists"
    )


def test_weights_lookup_order(no_weights_env, monkeypatch):
    tmp_path = no_weights_env
    member, _ = _cached_paths()
    member.parent.mkdir(parents=True)
    member.write_bytes(b"cached")
    assert find_m2d_clap_weights() == member  # the cache (name), first use records its sha256
    from_env = tmp_path / "env" / MODEL_NAME / "checkpoint-30.pth"
    from_env.parent.mkdir(parents=True)
    from_env.write_bytes(b"env")
    monkeypatch.setenv(WEIGHTS_ENV, str(from_env))
    assert find_m2d_clap_weights() == from_env
    assert find_m2d_clap_weights(from_env.parent) == from_env  # the unzipped release folder
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"explicit")
    assert find_m2d_clap_weights(explicit) == explicit
    assert find_m2d_clap_weights(WEIGHTS_NAME) == member
    with pytest.raises(FileNotFoundError) as err:
        find_m2d_clap_weights(tmp_path / "nope.pth")
    assert str(err.value).startswith(f"M2D-CLAP weights not found at {tmp_path / 'nope.pth'}")
    assert "\n" not in str(err.value) and RELEASE_ZIP in str(err.value)
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "gone.pth"))
    with pytest.raises(FileNotFoundError, match=f"gone.pth \\({WEIGHTS_ENV}\\)"):
        find_m2d_clap_weights()


def test_cached_weights_are_checked_against_their_first_use(no_weights_env):
    from lighthouse_audio.hub import ChecksumError

    member, _ = _cached_paths()
    member.parent.mkdir(parents=True)
    member.write_bytes(b"first")
    assert find_m2d_clap_weights() == member
    member.write_bytes(b"changed")
    with pytest.raises(ChecksumError, match=f"recorded when {WEIGHTS_NAME} was first used"):
        find_m2d_clap_weights()


def _release_zip(payload: bytes) -> bytes:
    """A zip laid out like the release: ``<model name>/checkpoint-30.pth`` plus a distractor."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"{MODEL_NAME}/", b"")
        zipped.writestr(f"{MODEL_NAME}/log.txt", b"training log")
        zipped.writestr(f"{MODEL_NAME}/checkpoint-30.pth", payload)
    return buffer.getvalue()


@pytest.fixture
def release_at(http_server, online, monkeypatch):  # noqa: F811 - pytest fixtures
    """The catalog's release zip served from 127.0.0.1 (``(served, url path)``)."""
    from lighthouse_audio.hub import PRETRAINED

    base, served = http_server
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    original = PRETRAINED.unregister(WEIGHTS_NAME)
    route = f"/nttcslab/m2d/releases/download/v0.5.0/{MODEL_NAME}.zip"
    PRETRAINED.register(replace(original, url=base + route))
    try:
        yield served, route
    finally:
        PRETRAINED.unregister(WEIGHTS_NAME)
        PRETRAINED.register(original)


def test_name_downloads_the_release_zip_and_keeps_only_the_checkpoint(release_at, capsys):
    served, route = release_at
    payload = os.urandom(300_000)
    served.files[route] = _release_zip(payload)
    member, archive = _cached_paths()
    path = find_m2d_clap_weights()
    assert path == member and path.read_bytes() == payload
    assert path.parent.name == MODEL_NAME and model_config(path).extras == ("B", "TI")
    assert not archive.exists()  # the zip is removed once its member is out
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint-30.pth"]
    assert f"downloading {WEIGHTS_NAME}" in capsys.readouterr().out
    record = json.loads((member.parents[2] / "checksums" / f"{WEIGHTS_NAME}.json").read_text())
    assert record["sha256"] == hashlib.sha256(payload).hexdigest()
    count = len(served.requests)
    assert find_m2d_clap_weights() == path  # from the cache: no request
    assert len(served.requests) == count


def test_damaged_release_zip_is_removed_and_reported(release_at):
    from lighthouse_audio.hub import DownloadError

    served, route = release_at
    served.files[route] = _release_zip(b"x" * 1000)[:-200]  # truncated: no central directory
    _, archive = _cached_paths()
    with pytest.raises(DownloadError, match="damaged zip .* run again to download it anew"):
        find_m2d_clap_weights()
    assert not archive.exists()
    served.files[route] = b"PK not a zip at all"
    with pytest.raises(DownloadError, match="damaged zip"):
        find_m2d_clap_weights()


def test_zip_put_by_hand_is_unpacked_offline(no_weights_env):
    member, archive = _cached_paths()
    archive.parent.mkdir(parents=True)
    archive.write_bytes(_release_zip(b"by hand"))
    assert find_m2d_clap_weights() == member and member.read_bytes() == b"by hand"
    assert not archive.exists()


def test_bert_vocabulary_lookup(no_weights_env, monkeypatch, bert_vocab_dir):
    from lighthouse_audio.hub import OfflineError

    with pytest.raises(OfflineError) as err:
        find_bert_vocab()
    message = str(err.value)
    assert message.startswith("bert-base-uncased-vocab: not in the cache and downloads are off")
    assert "google-bert/bert-base-uncased/resolve/main/vocab.txt" in message
    assert find_bert_vocab(bert_vocab_dir) == bert_vocab_dir / "vocab.txt"
    monkeypatch.setenv(TOKENIZER_ENV, str(bert_vocab_dir / "vocab.txt"))
    assert find_bert_vocab() == bert_vocab_dir / "vocab.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt \\(given path\\)"):
        find_bert_vocab(no_weights_env / "nope.txt")


# ----------------------------------------------------------------------------- safe loading


class _RunsCode:
    """Unpickling this calls ``os.makedirs(target)``: what a malicious checkpoint would do."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return os.makedirs, (self.target,)


def test_checkpoint_asking_for_code_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / MODEL_NAME / "checkpoint-30.pth"
    path.parent.mkdir()
    torch.save({"model": {"backbone.cls_token": torch.zeros(1)}, "x": _RunsCode(marker)}, path)
    with pytest.raises(ValueError, match="unsafe checkpoint") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert not marker.exists()
    with pytest.raises(ValueError, match="unsafe checkpoint"):
        m2d_clap.build_m2d_clap_encoder(path, text=False)
    assert not marker.exists()


def test_training_args_namespace_is_allowed(tmp_path):
    """The release's ``args`` entry is an ``argparse.Namespace`` (README §2)."""
    path = tmp_path / "checkpoint-30.pth"
    state = {"backbone.cls_token": torch.arange(3.0)}
    torch.save({"model": state, "epoch": 30, "args": argparse.Namespace(model="m2d")}, path)
    assert torch.equal(read_checkpoint(path)["backbone.cls_token"], torch.arange(3.0))


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"<html>not a checkpoint</html>", "is not a readable M2D-CLAP checkpoint"),
        ([1, 2, 3], "expected a dict with a 'model' state dict, got list"),
        ({"state_dict": {}}, "expected a dict with a 'model' state dict, got ['state_dict']"),
        ({"model": {"backbone.cls_token": torch.zeros(1, 1, 8)}}, "no 'backbone.pos_embed'"),
    ],
)
def test_wrong_file_is_one_line(tmp_path, content, fragment):
    path = tmp_path / MODEL_NAME / "checkpoint-30.pth"
    path.parent.mkdir()
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ValueError) as err:
        m2d_clap.build_m2d_clap_encoder(path, text=False)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and fragment in message


# ----------------------------------------------------------------------------- the 794 MB file


@pytest.fixture(scope="module")
def m2d_weights_sha256(m2d_weights) -> str:
    digest = hashlib.sha256()
    with open(m2d_weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def file_encoder(m2d_weights, bert_vocab_dir) -> m2d_clap.M2DClapEncoder:
    pytest.importorskip("transformers")
    return m2d_clap.build_m2d_clap_encoder(m2d_weights, tokenizer=bert_vocab_dir, batch_size=64)


def test_regenerated_file_loads_as_users_load_it(
    file_encoder, m2d_weights_sha256, m2d_manifest, m2d_io
):
    if torch.__version__.split("+")[0] == m2d_manifest["torch_version"].split("+")[0]:
        assert m2d_weights_sha256 == m2d_manifest["sha256"]  # byte-identical (README §1)
    assert file_encoder.weights_id() == m2d_weights_sha256[:16]
    windows = m2d_io["amr_thunder12s_windows"].numpy()
    features = file_encoder.encode_audio_windows(windows)
    assert _max_diff(features, m2d_io["amr_thunder12s_features"]) <= FEATURE_ATOL
    tokens = file_encoder.encode_text(list(m2d_io["captions"]))
    assert _max_diff(tokens[2], m2d_io["amr_text2_tokens"]) <= FEATURE_ATOL
    assert (file_encoder.audio_dim, file_encoder.text_dim) == (768, 768)


def test_extract_end_to_end(
    m2d_weights, m2d_weights_sha256, bert_vocab_dir, m2d_io, tmp_path, capsys
):
    """``lighthouse extract --feature m2d-clap``: the fixture's 16 kHz waves (written as float
    WAV, so decoding is exact) give the reference's AMR features; a real 32 kHz recording from
    ../shared/sounds goes through resampling; reruns are resumable and manifest-checked."""
    import soundfile as sf

    from lighthouse_audio.cli.main import main

    sounds = SHARED / "sounds"
    real = sounds / "fg" / "animal" / "0ad__cattle_01.flac"
    if not real.is_file():
        pytest.skip(f"{real} missing")
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    for key in AMR_KEYS:
        wave = m2d_io[f"{key}_wave"].numpy()
        sf.write(audio_dir / f"{key}.wav", wave, 16000, subtype="FLOAT")
    shutil.copy(real, audio_dir / "cattle.flac")
    captions = list(m2d_io["captions"])
    jsonl = tmp_path / "ann.jsonl"
    rows = [
        {"qid": 0, "query": captions[0], "duration": 2.11, "vid": "cattle"},
        {"qid": 1, "query": captions[1], "duration": 7.96, "vid": "printer"},
        {"qid": 2, "query": captions[2], "duration": 12.0, "vid": "thunder12s"},
    ]
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "features"
    command = ["extract", "--feature", "m2d-clap", "--audio-dir", str(audio_dir),
               "--jsonl", str(jsonl), "--out", str(out), "--device", "cpu", "--no-progress",
               "--weights", str(m2d_weights),
               "--option", f"tokenizer={bert_vocab_dir}"]  # fmt: skip
    assert main(command) == 0
    assert "audio: 3 written, 0 already done, 0 failed" in capsys.readouterr().out

    for key in AMR_KEYS:
        with np.load(out / "m2d-clap" / f"{key}.npz") as data:
            expected = m2d_io[f"amr_{key}_features"]
            assert data["features"].shape == tuple(expected.shape)
            assert _max_diff(data["features"], expected) <= FEATURE_ATOL
            n = len(expected)  # whole seconds, a partial last second dropped
            seconds = np.arange(n + 1, dtype=np.float64)
            np.testing.assert_array_equal(data["frame_times"], np.c_[seconds[:-1], seconds[1:]])
    with np.load(out / "m2d-clap" / "cattle.npz") as data:
        assert data["features"].shape == (2, 768)  # 2.111 s
        assert np.isfinite(data["features"]).all()
    for qid in range(3):
        with np.load(out / "m2d-clap_text" / f"qid{qid}.npz") as data:
            expected = m2d_io[f"amr_text{qid}_tokens"]
            assert _max_diff(data["last_hidden_state"], expected) <= FEATURE_ATOL
    manifest = json.loads((out / "m2d-clap" / "manifest.json").read_text())
    assert (manifest["feature"], manifest["weights_id"], manifest["sample_rate"]) == (
        "m2d-clap", m2d_weights_sha256[:16], 16000
    )  # fmt: skip
    assert (manifest["window"], manifest["hop"], manifest["frames"]) == (1.0, 1.0, "none")
    assert (manifest["audio_dim"], manifest["text_dim"]) == (768, 768)

    (out / "m2d-clap" / "printer.npz").write_bytes(b"truncated")
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "audio: 1 written, 2 already done" in printed and "text: 0 written, 3" in printed
    with np.load(out / "m2d-clap" / "printer.npz") as data:
        assert _max_diff(data["features"], m2d_io["amr_printer_features"]) <= FEATURE_ATOL
    assert main([*command, "--frames", "center"]) == 2
    assert "frames 'none' != 'center'" in capsys.readouterr().err
