"""The streamed, pooled spectrogram shows what is where, for any length and any span."""

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.audio.spectrogram import overview_spectrogram


@pytest.fixture
def tone_in_noise(tmp_path):
    """130 s of quiet noise at 22.05 kHz with a 1 kHz tone at 70-72 s (crosses a 60 s block)."""
    rate = 22050
    rng = np.random.default_rng(0)
    signal = 0.01 * rng.standard_normal(130 * rate).astype(np.float32)
    t = np.arange(2 * rate) / rate
    signal[58 * rate : 60 * rate] += 0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    signal[70 * rate : 72 * rate] += 0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    path = tmp_path / "tone.flac"
    sf.write(path, signal, rate)
    return path


def _loud_times(times, freqs, power_db):
    row = power_db[np.argmin(np.abs(freqs - 1000))]
    return times[row > row.max() - 10]


@pytest.mark.parametrize("max_columns", [100, 2400, 20000])
def test_tones_appear_at_their_times_whatever_the_pooling(tone_in_noise, max_columns):
    times, freqs, power_db = overview_spectrogram(tone_in_noise, max_columns=max_columns)
    assert power_db.shape == (len(freqs), len(times)) and len(times) <= max_columns
    assert np.all(np.diff(times) > 0) and 0 <= times[0] and times[-1] <= 130
    loud = _loud_times(times, freqs, power_db)
    step = times[1] - times[0]
    assert set(np.round(loud[(loud > 50) & (loud < 65)])).issubset(range(57, 62))
    near = loud[loud > 65]
    assert abs(near.min() - 70) <= step + 0.05 and abs(near.max() - 72) <= step + 0.05


def test_a_span_is_decoded_alone(tone_in_noise):
    times, freqs, power_db = overview_spectrogram(tone_in_noise, start=65, end=80, max_columns=300)
    assert 65 <= times[0] < 65.1 and 79.9 < times[-1] <= 80
    loud = _loud_times(times, freqs, power_db)
    assert 69.9 <= loud.min() and loud.max() <= 72.1
    with pytest.raises(ValueError, match="empty or outside"):
        overview_spectrogram(tone_in_noise, start=200)
