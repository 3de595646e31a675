"""Frame conventions, frame times, window contents, and streaming == in-memory cutting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.audio.decode import AudioError, load_audio, stream_audio
from lighthouse_audio.audio.windows import (
    FRAME_CONVENTIONS,
    cut_windows,
    frame_times,
    iter_windows,
    num_frames,
    window_samples,
)

SR = 100  # a low rate keeps the arithmetic visible and the tests fast
SOUNDS = Path(__file__).resolve().parents[3] / "shared" / "sounds"


def _ramp(num_samples: int) -> np.ndarray:
    """1, 2, 3, ...: every sample is distinct and non-zero, so padding and offsets show."""
    return np.arange(1, num_samples + 1, dtype=np.float32)


def _stream(signal: np.ndarray, sizes: list[int], **kwargs) -> np.ndarray:
    """Cut ``signal`` into blocks of the given sizes (cycled) and window it by streaming."""
    blocks, start, k = [], 0, 0
    while start < len(signal):
        blocks.append(signal[start : start + sizes[k % len(sizes)]])
        start += sizes[k % len(sizes)]
        k += 1
    batches = list(iter_windows(iter(blocks), SR, **kwargs))
    return np.concatenate(batches) if batches else np.zeros((0, 0), np.float32)


# --- counts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [1, 2, 10, 37])
def test_n_seconds_give_n_plus_one_center_and_n_none_frames(seconds):
    n = seconds * SR
    assert num_frames(n, SR, 1.0, 1.0, "center") == seconds + 1
    assert num_frames(n, SR, 1.0, 1.0, "none") == seconds
    assert len(cut_windows(_ramp(n), SR, frames="center")) == seconds + 1
    assert len(cut_windows(_ramp(n), SR, frames="none")) == seconds


@pytest.mark.parametrize(
    ("seconds", "window", "hop", "center", "none"),
    [
        (10.5, 1.0, 1.0, 11, 10),  # a partial last second: centre 10 s is inside, no whole window
        (10.0, 4.0, 1.0, 11, 7),
        (10.0, 7.0, 1.0, 11, 4),
        (10.0, 1.0, 0.5, 21, 19),
        (10.0, 7.0, 0.5, 21, 7),
        (3.0, 4.0, 1.0, 4, 0),
        (0.4, 1.0, 1.0, 1, 0),
    ],
)
def test_counts(seconds, window, hop, center, none):
    n = round(seconds * SR)
    assert num_frames(n, SR, window, hop, "center") == center == n // round(hop * SR) + 1
    assert num_frames(n, SR, window, hop, "none") == none
    assert len(frame_times(n, SR, window, hop, "center")) == center
    assert len(frame_times(n, SR, window, hop, "none")) == none


def test_none_matches_lighthouse_truncate_and_unfold():
    sr = 16000
    wav = np.random.default_rng(0).standard_normal(5 * sr + 1234, np.float32)
    # torch's wav[: len // sr * sr].unfold(0, sr, sr) with window == hop is this reshape.
    lighthouse = wav[: len(wav) // sr * sr].reshape(-1, sr)
    np.testing.assert_array_equal(cut_windows(wav, sr, 1.0, 1.0, "none"), lighthouse)


# --- times --------------------------------------------------------------------------------------


def test_frame_times_center():
    times = frame_times(3 * SR, SR, 1.0, 1.0, "center")
    np.testing.assert_allclose(times, [[-0.5, 0.5], [0.5, 1.5], [1.5, 2.5], [2.5, 3.5]])
    times = frame_times(10 * SR, SR, 7.0, 1.0, "center")
    np.testing.assert_allclose(times[0], [-3.5, 3.5])
    np.testing.assert_allclose(times[-1], [6.5, 13.5])
    np.testing.assert_allclose(times.mean(axis=1), np.arange(11))  # centred on i * hop


def test_frame_times_none_and_float_hop():
    np.testing.assert_allclose(frame_times(3 * SR, SR, 1.0, 1.0, "none"), [[0, 1], [1, 2], [2, 3]])
    times = frame_times(10 * SR, SR, 4.0, 0.5, "none")
    np.testing.assert_allclose(times[:, 0], np.arange(13) * 0.5)
    np.testing.assert_allclose(times[:, 1] - times[:, 0], 4.0)


def test_frame_times_follow_rounded_samples():
    assert window_samples(16000, 1 / 3, 1 / 3) == (5333, 5333)
    times = frame_times(16000 * 2, 16000, 1 / 3, 1 / 3, "none")
    assert len(times) == 6  # (32000 - 5333) // 5333 + 1
    np.testing.assert_allclose(times[-1], [5 * 5333 / 16000, 6 * 5333 / 16000])


# --- contents -----------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1.0, 4.0, 7.0])
def test_center_windows_are_zero_padded_by_half_a_window(window):
    x = _ramp(10 * SR)
    win = round(window * SR)
    w = cut_windows(x, SR, window, 1.0, "center")
    assert w.shape == (11, win) and w.dtype == np.float32
    np.testing.assert_array_equal(w[0, : win // 2], 0)
    np.testing.assert_array_equal(w[0, win // 2 :], x[: win - win // 2])
    for i in range(11):  # frame i is centred on sample i * hop
        lo = i * SR - win // 2
        expected = np.array([x[j] if 0 <= j < len(x) else 0 for j in range(lo, lo + win)])
        np.testing.assert_array_equal(w[i], expected)
    assert w[-1, win // 2] == 0  # the last centre is the end of the signal


def test_odd_window_puts_the_extra_sample_on_the_right():
    w = cut_windows(_ramp(10), 10, window=0.5, hop=0.5, frames="center")  # 5-sample windows
    np.testing.assert_array_equal(w[0], [0, 0, 1, 2, 3])
    np.testing.assert_allclose(frame_times(10, 10, 0.5, 0.5, "center")[0], [-0.2, 0.3])


def test_none_windows_are_plain_slices():
    x = _ramp(10 * SR + 37)
    w = cut_windows(x, SR, 4.0, 0.5, "none")
    for i, row in enumerate(w):
        np.testing.assert_array_equal(row, x[i * 50 : i * 50 + 400])


# --- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", FRAME_CONVENTIONS)
@pytest.mark.parametrize(
    ("window", "hop"), [(1.0, 1.0), (4.0, 1.0), (7.0, 1.0), (1.0, 0.5), (0.5, 1.3), (0.07, 0.03)]
)
@pytest.mark.parametrize("sizes", [[1], [37], [101, 0, 7], [100_000]])
@pytest.mark.parametrize("batch_size", [1, 5])
def test_streaming_equals_in_memory(frames, window, hop, sizes, batch_size):
    x = _ramp(12 * SR + 29)
    expected = cut_windows(x, SR, window, hop, frames)
    got = _stream(x, sizes, window=window, hop=hop, frames=frames, batch_size=batch_size)
    np.testing.assert_array_equal(got, expected)


def test_streaming_batches_and_is_lazy():
    consumed = []

    def blocks():
        for k in range(100):
            consumed.append(k)
            yield np.full(SR, k, np.float32)

    it = iter_windows(blocks(), SR, 1.0, 1.0, "center", batch_size=8)
    first = next(it)
    assert first.shape == (8, SR) and len(consumed) <= 9  # only what the first batch needed
    rest = list(it)
    assert [len(b) for b in rest] == [8] * 11 + [5]  # 101 frames in all


def test_stream_audio_into_windows_equals_load_and_cut(tmp_path):
    path = tmp_path / "a.flac"
    rng = np.random.default_rng(2)
    sf.write(path, rng.uniform(-0.5, 0.5, 32000 * 9 + 500).astype(np.float32), 32000)
    for frames in FRAME_CONVENTIONS:
        expected = cut_windows(load_audio(path, 44100), 44100, 1.0, 1.0, frames)
        batches = iter_windows(stream_audio(path, 44100, 2.3), 44100, 1.0, 1.0, frames, 4)
        np.testing.assert_allclose(np.concatenate(list(batches)), expected, atol=1e-6)


@pytest.mark.skipif(not (SOUNDS / "manifest.jsonl").exists(), reason=f"{SOUNDS} not present")
def test_real_recording_frame_counts():
    rows = [json.loads(line) for line in (SOUNDS / "manifest.jsonl").read_text().splitlines()]
    path = SOUNDS / next(r["path"] for r in rows if r["duration"] > 3)
    wav = load_audio(path, 16000)
    seconds = len(wav) // 16000
    assert len(cut_windows(wav, 16000, frames="center")) == seconds + 1
    assert len(cut_windows(wav, 16000, frames="none")) == seconds


# --- errors -------------------------------------------------------------------------------------


def test_shorter_than_one_window_names_the_source():
    x = _ramp(40)  # 0.4 s
    match = r"clip\.wav: shorter than one window \(0\.4 s < 1\.0 s\)"
    with pytest.raises(AudioError, match=match):
        cut_windows(x, SR, 1.0, 1.0, "none", source="clip.wav")
    with pytest.raises(AudioError, match=match):
        list(iter_windows([x[:25], x[25:]], SR, 1.0, 1.0, "none", source="clip.wav"))
    assert cut_windows(x, SR, 1.0, 1.0, "center").shape == (1, SR)  # centre 0 is inside


def test_empty_and_malformed_inputs():
    for frames in FRAME_CONVENTIONS:
        with pytest.raises(AudioError, match="x.wav: empty signal"):
            cut_windows(np.zeros(0, np.float32), SR, frames=frames, source="x.wav")
        with pytest.raises(AudioError, match="empty signal"):
            list(iter_windows([], SR, frames=frames))
    with pytest.raises(ValueError, match=r"frames must be one of \('center', 'none'\), got 'same'"):
        num_frames(100, SR, frames="same")
    with pytest.raises(ValueError, match="frames must be one of"):
        iter_windows([], SR, frames="same")  # raised eagerly, before iteration
    with pytest.raises(ValueError, match="at least one sample"):
        window_samples(SR, 0.001, 1.0)
    with pytest.raises(ValueError, match="batch_size"):
        iter_windows([], SR, batch_size=0)
    with pytest.raises(ValueError, match=r"expected a 1-D mono signal, got shape \(100, 2\)"):
        cut_windows(np.zeros((100, 2), np.float32), SR)
