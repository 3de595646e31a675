"""Background cutting and foreground trimming on hand-made signals."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.simulation.preprocess import (
    background_windows,
    cut_background,
    trim_bounds,
    trim_foreground,
    trim_foreground_file,
)

from .conftest import SR, write_noise


def _seconds(*levels: float, tail: float = 0.0) -> np.ndarray:
    """A signal of one constant-amplitude (+-level) second per argument, plus a tail."""
    parts = [np.full(SR, lv) * np.where(np.arange(SR) % 2, 1, -1) for lv in levels]
    parts.append(np.full(int(tail * SR), 1.0))
    return np.concatenate(parts)


def test_trim_keeps_whole_seconds_above_mean_power_minus_5_db():
    # Powers 0, 1e-4, 1, 1, 0.01, 0: mean = 2.0101/6 = 0.335; threshold 0.335 * 10**-0.5 = 0.106
    x = _seconds(0, 0.01, 1, 1, 0.1, 0)
    assert trim_bounds(x, SR) == (2 * SR, 4 * SR)
    assert len(trim_foreground(x, SR)) == 2 * SR
    # A lower threshold (20 dB) keeps the 0.01-power second too, and the 1e-4 one at 40 dB.
    assert trim_bounds(x, SR, clip_db=20) == (2 * SR, 5 * SR)
    assert trim_bounds(x, SR, clip_db=40) == (1 * SR, 5 * SR)


def test_trim_drops_the_sub_second_tail_but_counts_it_in_the_mean():
    # The loud 0.5 s tail raises the mean power (threshold) but is never kept itself.
    x = _seconds(0.3, 0.3, tail=0.5)
    assert trim_bounds(x, SR) == (0, 2 * SR)
    quiet = _seconds(0.1, 0.1, tail=0.9)  # tail dominates: no whole second passes
    assert trim_bounds(quiet, SR) == (0, 2 * SR)  # official fallback: keep whole seconds
    assert trim_bounds(np.ones(SR - 1), SR) == (0, 0)  # under 1 s: nothing


def test_trim_a_gap_inside_is_kept():
    x = _seconds(1, 0, 1)
    assert trim_bounds(x, SR) == (0, 3 * SR)  # first and last loud seconds bound the span


def test_trim_file_and_bad_clips(tmp_path):
    src = tmp_path / "x.wav"
    sf.write(src, _seconds(0, 1, 1, 0, tail=0.3) * 0.5, SR)
    assert trim_foreground_file(src, tmp_path / "out" / "x.flac", SR) == 2.0
    assert sf.info(tmp_path / "out" / "x.flac").frames == 2 * SR
    sf.write(tmp_path / "silent.wav", np.zeros(3 * SR), SR)
    with pytest.raises(ValueError, match="silent.wav: silent"):
        trim_foreground_file(tmp_path / "silent.wav", tmp_path / "o.flac", SR)
    write_noise(tmp_path / "short.wav", 0.5)
    with pytest.raises(ValueError, match="short.wav: shorter than 1 s"):
        trim_foreground_file(tmp_path / "short.wav", tmp_path / "o.flac", SR)
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValueError, match="text.wav: not a readable audio file"):
        trim_foreground_file(tmp_path / "text.wav", tmp_path / "o.flac", SR)


def test_background_windows_count_and_names():
    sr = 100
    # 62.5 s: starts 0, 1, 2 fit (end 62 <= 62.5); 3 would end at 63.
    windows = background_windows(6250, sr, clip_length=60, hop=1)
    assert [w.label for w in windows] == ["0.0_60.0", "1.0_61.0", "2.0_62.0"]
    assert (windows[1].start_sample, windows[1].end_sample) == (100, 6100)
    assert len(background_windows(6000, sr)) == 1  # exactly 60 s: one clip
    assert background_windows(5999, sr) == []
    # Count: floor((length - clip) / hop) + 1, e.g. the official Singapore: 5741 clips.
    assert len(background_windows(5800 * sr + 50, sr)) == 5741
    half = background_windows(6200, sr, clip_length=60, hop=0.5)
    assert [w.label for w in half] == ["0.0_60.0", "0.5_60.5", "1.0_61.0", "1.5_61.5", "2.0_62.0"]
    with pytest.raises(ValueError, match="must be > 0"):
        background_windows(6000, sr, hop=0)


def test_cut_background_writes_the_official_layout(tmp_path):
    src = write_noise(tmp_path / "Singapore.wav", 12.5)
    clips = cut_background(src, tmp_path / "bg", sample_rate=SR, clip_length=10, hop=1)
    assert [name for name, _ in clips] == [
        "Singapore_0.0_10.0",
        "Singapore_1.0_11.0",
        "Singapore_2.0_12.0",
    ]
    assert clips[2][1] == tmp_path / "bg" / "Singapore" / "2.0_12.0.wav"
    whole, _ = sf.read(src)
    part, _ = sf.read(clips[2][1])
    np.testing.assert_array_equal(part, whole[2 * SR : 12 * SR])
