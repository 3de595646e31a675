"""The picture writer: a PNG of a recording with true and predicted moments."""

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.demo.picture import log_spectrogram, write_moment_picture

pytest.importorskip("matplotlib")


@pytest.fixture
def recording(tmp_path):
    rate = 16000
    t = np.arange(rate * 12) / rate
    signal = 0.01 * np.random.default_rng(0).normal(size=t.size)
    signal[rate * 3 : rate * 6] += 0.5 * np.sin(2 * np.pi * 880 * t[rate * 3 : rate * 6])
    path = tmp_path / "clip.wav"
    sf.write(path, signal.astype(np.float32), rate)
    return path


QUERIES = [
    {
        "query": "a high beep sounds for three seconds",
        "relevant_windows": [[3.0, 6.0]],
        "pred_relevant_windows": [[2.9, 6.2, 0.91], [0.0, 12.0, 0.2]],
    },
    {"query": "a very long query " * 10, "relevant_windows": [[8, 10]]},  # no predictions
]


def test_writes_a_png(recording, tmp_path):
    out = write_moment_picture(recording, QUERIES, tmp_path / "pics" / "clip.png", title="t")
    assert out == tmp_path / "pics" / "clip.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["clip.png"]  # no temporary file left


def test_picture_size_grows_with_queries(recording, tmp_path):
    Image = pytest.importorskip("PIL.Image")

    one = write_moment_picture(recording, QUERIES[:1], tmp_path / "one.png")
    many = write_moment_picture(recording, QUERIES * 3, tmp_path / "many.png")
    with Image.open(one) as a, Image.open(many) as b:
        assert b.size[0] == a.size[0] and b.size[1] > a.size[1]


def test_spectrogram_shows_the_tone(recording):
    signal, rate = sf.read(recording)
    times, freqs, power_db = log_spectrogram(signal, rate)
    row = np.argmin(np.abs(freqs - 880))
    inside = power_db[row, (times > 3.5) & (times < 5.5)].mean()
    outside = power_db[row, (times > 7) & (times < 11)].mean()
    assert inside > outside + 20
