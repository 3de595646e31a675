"""Decoding, mixing, resampling and streaming of audio files, and every bad-input error."""

from __future__ import annotations

import json
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.audio.decode import (
    AudioError,
    AudioFileNotFoundError,
    audio_info,
    load_audio,
    resampled_length,
    stream_audio,
)

SOUNDS = Path(__file__).resolve().parents[3] / "shared" / "sounds"
needs_sounds = pytest.mark.skipif(
    not (SOUNDS / "manifest.jsonl").exists(), reason=f"{SOUNDS} not present"
)


def _manifest(role: str) -> list[dict]:
    rows = [json.loads(line) for line in (SOUNDS / "manifest.jsonl").read_text().splitlines()]
    return sorted((r for r in rows if r["role"] == role), key=lambda r: r["duration"])


def _sine(freq: float, sample_rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[np.argmax(spectrum)])


def _concat(blocks) -> np.ndarray:
    return np.concatenate(list(blocks))


# --- real recordings ---------------------------------------------------------------------------


@needs_sounds
def test_real_flac_decodes_at_native_rate():
    row = _manifest("fg")[len(_manifest("fg")) // 2]
    path = SOUNDS / row["path"]
    info = audio_info(path)
    assert (info.sample_rate, info.channels) == (32000, 1)
    assert info.duration == pytest.approx(row["duration"], abs=1e-3)
    wav = load_audio(path, 32000)
    assert wav.dtype == np.float32 and wav.shape == (info.num_frames,)
    assert 0 < np.abs(wav).max() <= 1.0


@needs_sounds
@pytest.mark.parametrize("sample_rate", [16000, 44100])
def test_real_ogg_streams_like_load(sample_rate):
    path = SOUNDS / _manifest("bg")[0]["path"]
    info = audio_info(path)
    assert info.duration >= 30
    whole = load_audio(path, sample_rate)
    assert len(whole) == resampled_length(info.num_frames, info.sample_rate, sample_rate)
    streamed = _concat(stream_audio(path, sample_rate, block_seconds=7.3))
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


# --- mixing and resampling ----------------------------------------------------------------------


def test_stereo_is_mixed_by_mean(tmp_path):
    left, right = _sine(440, 16000, 1.0), _sine(1000, 16000, 1.0, amp=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    assert audio_info(path).channels == 2
    np.testing.assert_allclose(load_audio(path, 16000), (left + right) / 2, atol=1e-7)
    np.testing.assert_allclose(
        _concat(stream_audio(path, 16000, 0.3)), (left + right) / 2, atol=1e-7
    )


@pytest.mark.parametrize("sample_rate", [16000, 44100])
def test_resampling_keeps_length_rule_and_frequency(tmp_path, sample_rate):
    path = tmp_path / "sine.flac"
    x = _sine(1000, 32000, 2.0)
    sf.write(path, x[:-7], 32000)  # an odd length, so the rounding rule matters
    wav = load_audio(path, sample_rate)
    assert len(wav) == resampled_length(len(x) - 7, 32000, sample_rate)
    assert len(wav) == pytest.approx((len(x) - 7) * sample_rate / 32000, abs=0.5)
    assert _peak_hz(wav, sample_rate) == pytest.approx(1000, abs=1.0)
    # Amplitude survives too (a broken filter would attenuate or alias).
    assert np.abs(wav[1000:-1000]).max() == pytest.approx(0.5, abs=0.01)


def test_resampled_length_rounds_half_up():
    assert resampled_length(32001, 32000, 16000) == 16001
    assert resampled_length(44101, 44100, 16000) == 16000
    assert resampled_length(123, 8000, 8000) == 123


@pytest.mark.parametrize(("sr_in", "sr_out", "block"), [(32000, 44100, 0.37), (22050, 16000, 1.0)])
def test_stream_equals_load(tmp_path, sr_in, sr_out, block):
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.wav"
    sf.write(path, rng.uniform(-0.5, 0.5, (3 * sr_in + 11, 2)).astype(np.float32), sr_in, "FLOAT")
    whole = load_audio(path, sr_out)
    blocks = list(stream_audio(path, sr_out, block_seconds=block))
    assert len(blocks) > 3 and all(len(b) for b in blocks)
    streamed = np.concatenate(blocks)
    assert len(streamed) == len(whole) == resampled_length(3 * sr_in + 11, sr_in, sr_out)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_stream_without_resampling_is_exact_blocks(tmp_path):
    path = tmp_path / "a.wav"
    x = _sine(300, 16000, 2.5)
    sf.write(path, x, 16000, subtype="FLOAT")
    blocks = list(stream_audio(path, 16000, block_seconds=1.0))
    assert [len(b) for b in blocks] == [16000, 16000, 8000]
    np.testing.assert_array_equal(np.concatenate(blocks), x)


def test_mp3_decodes_when_libsndfile_supports_it(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile built without MP3")
    path = tmp_path / "a.mp3"
    sf.write(path, _sine(500, 32000, 1.0), 32000)
    wav = load_audio(path, 16000)
    assert abs(len(wav) - 16000) <= 16 and _peak_hz(wav, 16000) == pytest.approx(500, abs=2)


def test_long_file_streams_in_bounded_memory(tmp_path):
    path = tmp_path / "long.wav"
    sr, minutes = 8000, 20
    tone = (_sine(200, sr, 60.0) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
        for _ in range(minutes):
            f.write(tone)
    assert audio_info(path).duration == minutes * 60
    total, longest = 0, 0
    tracemalloc.start()
    try:
        for block in stream_audio(path, 16000, block_seconds=30.0):
            total += len(block)
            longest = max(longest, len(block))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == minutes * 60 * 16000
    assert longest <= 30.1 * 16000
    # The whole output would be 77 MB of float32; a few 30-s blocks are ~2 MB each.
    assert peak < 16e6


# --- errors -------------------------------------------------------------------------------------


def _assert_error(path: Path, match: str, exc: type[Exception] = AudioError) -> None:
    """Every entry point raises the same one-line error naming the file."""
    for call in (
        audio_info,
        lambda p: load_audio(p, 16000),
        lambda p: _concat(stream_audio(p, 16000)),
    ):
        with pytest.raises(exc, match=match) as info:
            call(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message


def test_missing_file(tmp_path):
    _assert_error(tmp_path / "nope.wav", "no such file", AudioFileNotFoundError)
    with pytest.raises(FileNotFoundError):
        audio_info(tmp_path / "nope.wav")


def test_directory_is_not_audio(tmp_path):
    _assert_error(tmp_path, "not a regular file")


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("hello, not audio\n")
    _assert_error(path, "not a readable audio file")


def test_corrupt_wav_header(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    _assert_error(path, "not a readable audio file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    _assert_error(path, r"empty audio \(0 frames\)")
    zero_bytes = tmp_path / "zero.flac"
    zero_bytes.touch()
    _assert_error(zero_bytes, "not a readable audio file")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_name_the_first_bad_time(tmp_path, bad):
    x = _sine(440, 16000, 3.0)
    x[40000] = bad  # 2.5 s
    x[45000] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, np.stack([np.zeros_like(x), x], axis=1), 16000, subtype="FLOAT")
    assert audio_info(path).num_frames == 48000  # the header is fine; decoding finds it
    with pytest.raises(AudioError, match=r"non-finite.* at 2\.500 s"):
        load_audio(path, 16000)
    with pytest.raises(AudioError, match=r"non-finite.* at 2\.500 s"):
        _concat(stream_audio(path, 44100, block_seconds=0.7))


@pytest.mark.parametrize("rate", [8, 999, 800_000])
def test_absurd_sample_rate(tmp_path, rate):
    path = tmp_path / f"r{rate}.wav"
    with wave.open(str(path), "wb") as w:  # the stdlib writes any rate into the header
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.zeros(100, np.int16).tobytes())
    _assert_error(path, rf"sample rate {rate} Hz is outside \[1000, 768000\] Hz")


def test_bad_requested_rate_or_block(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, _sine(440, 16000, 0.5), 16000)
    with pytest.raises(ValueError, match="requested sample_rate 10 Hz"):
        load_audio(path, 10)
    with pytest.raises(TypeError, match="must be an int"):
        load_audio(path, 16000.0)
    with pytest.raises(ValueError, match="block_seconds"):
        stream_audio(path, 16000, block_seconds=0)


def test_truncated_flac_fails_while_decoding(tmp_path):
    full = tmp_path / "full.flac"
    rng = np.random.default_rng(1)
    sf.write(full, rng.uniform(-0.5, 0.5, 32000 * 3).astype(np.float32), 32000)
    path = tmp_path / "cut.flac"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert audio_info(path).num_frames == 96000  # the header still promises 3 s
    with pytest.raises(AudioError, match="cut.flac: (decoding failed|truncated)"):
        load_audio(path, 32000)
    with pytest.raises(AudioError, match="cut.flac: (decoding failed|truncated)"):
        _concat(stream_audio(path, 16000, block_seconds=0.5))


def test_tiny_file_that_resamples_to_nothing(tmp_path):
    path = tmp_path / "one.wav"
    sf.write(path, np.full(1, 0.1, np.float32), 48000)
    with pytest.raises(AudioError, match="resample to 0 samples"):
        load_audio(path, 8000)
    with pytest.raises(AudioError, match="resample to 0 samples"):
        _concat(stream_audio(path, 8000))
