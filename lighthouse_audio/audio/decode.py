"""Decode an audio file to mono float32 at a requested sample rate, whole or block by block.

Decoding is libsndfile (through ``soundfile``): WAV, FLAC, Ogg Vorbis/Opus and, with libsndfile
>= 1.1, MP3. Channels are mixed to mono by their mean, then resampled with ``soxr`` (``HQ``) when
the file's rate differs from the requested one.

Length contract: resampling ``n`` frames from ``sr_in`` to ``sr_out`` gives exactly
``resampled_length(n, sr_in, sr_out) == floor(n * sr_out / sr_in + 0.5)`` samples (round half
up; soxr's own rule), for ``load_audio`` and for the concatenated blocks of ``stream_audio``
alike. Both feed the same soxr filter, so their samples agree to float32 rounding.

Every problem with a file raises ``AudioError`` (a ``ValueError``) whose single-line message
starts with the path, so a batch job can log it and move on.

>>> info = audio_info("rain.ogg")                        # doctest: +SKIP
>>> wav = load_audio("rain.ogg", sample_rate=44100)      # doctest: +SKIP
>>> for block in stream_audio("3h.flac", 44100):         # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioError",
    "AudioFileNotFoundError",
    "AudioInfo",
    "audio_info",
    "load_audio",
    "load_segment",
    "resampled_length",
    "stream_audio",
]

# Outside this range a rate is a broken header (or a typo), not a recording.
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
RESAMPLE_QUALITY = "HQ"

PathLike = str | os.PathLike


class AudioError(ValueError):
    """A file that cannot be used as audio. The message is one line and starts with the path."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The path does not exist; catchable as ``AudioError`` or as ``FileNotFoundError``."""


@dataclass(frozen=True)
class AudioInfo:
    """What the header says, at the file's own rate (before mixing or resampling).

    >>> AudioInfo(sample_rate=32000, num_frames=64000, channels=1, duration=2.0)
    AudioInfo(sample_rate=32000, num_frames=64000, channels=1, duration=2.0)
    """

    sample_rate: int
    num_frames: int
    channels: int
    duration: float  # seconds, num_frames / sample_rate


def resampled_length(num_frames: int, sample_rate_in: int, sample_rate_out: int) -> int:
    """Samples that ``num_frames`` become at ``sample_rate_out``: round half up, as soxr does.

    >>> resampled_length(32001, 32000, 16000)
    16001
    """
    if sample_rate_in == sample_rate_out:
        return num_frames
    return math.floor(num_frames * sample_rate_out / sample_rate_in + 0.5)


def audio_info(path: PathLike) -> AudioInfo:
    """Read and check the header: the file exists, decodes, has frames and a sane rate."""
    p = Path(path)
    if not p.exists():
        raise AudioFileNotFoundError(f"{path}: no such file")
    if not p.is_file():
        raise AudioError(f"{path}: not a regular file")
    try:
        raw = sf.info(os.fspath(p))
    except (sf.SoundFileError, RuntimeError) as err:
        # libsndfile says "Format not recognised" for text, images, truncated headers...
        raise AudioError(f"{path}: not a readable audio file: {_one_line(err)}") from err
    rate = int(raw.samplerate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{path}: sample rate {rate} Hz is outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz"
        )
    if raw.channels < 1:
        raise AudioError(f"{path}: header declares {raw.channels} channels")
    if raw.frames <= 0:
        raise AudioError(f"{path}: empty audio (0 frames)")
    return AudioInfo(
        sample_rate=rate,
        num_frames=int(raw.frames),
        channels=int(raw.channels),
        duration=raw.frames / rate,
    )


def load_audio(path: PathLike, sample_rate: int) -> np.ndarray:
    """The whole file as float32 mono ``(num_samples,)`` at ``sample_rate``.

    ``num_samples == resampled_length(info.num_frames, info.sample_rate, sample_rate)``. For long
    recordings prefer ``stream_audio``, which never holds more than one block.
    """
    _check_rate(sample_rate, "requested sample_rate")
    info = audio_info(path)
    try:
        data, _ = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as err:
        raise AudioError(f"{path}: decoding failed: {_one_line(err)}") from err
    if len(data) != info.num_frames:
        raise _truncated(path, len(data), info)
    _check_finite(path, data, offset=0, sample_rate=info.sample_rate)
    mono = _to_mono(data)
    if info.sample_rate == sample_rate:
        return mono
    out = soxr.resample(mono, info.sample_rate, sample_rate, quality=RESAMPLE_QUALITY)
    return _check_not_empty_after_resampling(path, out.astype(np.float32, copy=False), info)


def load_segment(path: PathLike, start: float, end: float) -> tuple[np.ndarray, int]:
    """``[start, end)`` seconds of the file as float32 mono at its own rate: ``(signal, rate)``.

    Only that part is decoded (for playing back one moment of a long recording).
    """
    info = audio_info(path)
    first = min(max(int(start * info.sample_rate), 0), info.num_frames)
    last = min(max(int(np.ceil(end * info.sample_rate)), first), info.num_frames)
    if last <= first:
        raise AudioError(f"{path}: [{start:g}, {end:g}) s holds no audio (the file is "
                         f"{info.duration:.1f} s)")  # fmt: skip
    try:
        data, _ = sf.read(os.fspath(path), start=first, stop=last, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as err:
        raise AudioError(f"{path}: decoding failed: {_one_line(err)}") from err
    _check_finite(path, data, offset=first, sample_rate=info.sample_rate)
    return _to_mono(data), info.sample_rate


def stream_audio(
    path: PathLike, sample_rate: int, block_seconds: float = 60.0
) -> Iterator[np.ndarray]:
    """Yield consecutive float32 mono blocks at ``sample_rate``; their concatenation is
    ``load_audio(path, sample_rate)`` (to float32 rounding, same length).

    Each read is ``block_seconds`` of the file; soxr holds back its filter delay (a few ms) from
    the first block and releases it with the last, so a block is ``block_seconds`` long give or
    take that delay, and never longer than ``block_seconds`` plus 0.1 s. Empty blocks are not
    yielded. The header is checked here, before the first ``next()``; decoding errors (corrupt
    data, NaN, a file shorter than its header) surface during iteration, as ``AudioError``.
    """
    _check_rate(sample_rate, "requested sample_rate")
    if not (block_seconds > 0 and math.isfinite(block_seconds)):
        raise ValueError(f"block_seconds must be a positive number of seconds, got {block_seconds}")
    info = audio_info(path)
    block_frames = max(1, round(block_seconds * info.sample_rate))
    return _stream_blocks(path, info, sample_rate, block_frames)


def _stream_blocks(
    path: PathLike, info: AudioInfo, sample_rate: int, block_frames: int
) -> Iterator[np.ndarray]:
    # A generator of its own so that stream_audio validates eagerly (generators run lazily).
    resampler = None
    if info.sample_rate != sample_rate:
        resampler = soxr.ResampleStream(
            info.sample_rate, sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
        )
    read = 0
    yielded = 0
    try:
        f = sf.SoundFile(os.fspath(path))
    except (sf.SoundFileError, RuntimeError) as err:  # the file changed since the header check
        raise AudioError(f"{path}: cannot open audio: {_one_line(err)}") from err
    with f:
        while True:
            try:
                data = f.read(block_frames, dtype="float32", always_2d=True)
            except (sf.SoundFileError, RuntimeError) as err:
                at = read / info.sample_rate
                raise AudioError(
                    f"{path}: decoding failed after {at:.3f} s: {_one_line(err)}"
                ) from err
            if len(data) == 0:
                break
            _check_finite(path, data, offset=read, sample_rate=info.sample_rate)
            read += len(data)
            mono = _to_mono(data)
            block = mono if resampler is None else resampler.resample_chunk(mono)
            if len(block):
                yielded += len(block)
                yield block
    if read != info.num_frames:
        raise _truncated(path, read, info)
    if resampler is not None:
        # Flush the filter's delay line: the samples it was still holding back.
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yielded += len(tail)
            yield tail
    if yielded == 0:
        _check_not_empty_after_resampling(path, np.zeros(0, np.float32), info)


def _check_rate(sample_rate: int, what: str) -> None:
    if not (isinstance(sample_rate, int | np.integer) and not isinstance(sample_rate, bool)):
        raise TypeError(f"{what} must be an int (Hz), got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(
            f"{what} {sample_rate} Hz is outside [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz"
        )


def _check_finite(path: PathLike, data: np.ndarray, offset: int, sample_rate: int) -> None:
    """Raise on the first NaN/inf frame (any channel); ``offset`` is the frame index of data[0]."""
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        first = offset + int(np.argmin(finite))
        raise AudioError(
            f"{path}: non-finite sample (NaN or inf) at {first / sample_rate:.3f} s (frame {first})"
        )


def _to_mono(data: np.ndarray) -> np.ndarray:
    """``(frames, channels)`` -> contiguous float32 ``(frames,)``; mono is passed through."""
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0])
    # Accumulate in float64: float32 sums of loud channels can overflow or lose low bits.
    return data.mean(axis=1, dtype=np.float64).astype(np.float32)


def _truncated(path: PathLike, decoded: int, info: AudioInfo) -> AudioError:
    return AudioError(
        f"{path}: truncated or corrupt: decoded {decoded} frames "
        f"({decoded / info.sample_rate:.3f} s) but the header declares {info.num_frames} "
        f"({info.duration:.3f} s)"
    )


def _check_not_empty_after_resampling(
    path: PathLike, out: np.ndarray, info: AudioInfo
) -> np.ndarray:
    if len(out) == 0:
        raise AudioError(
            f"{path}: {info.num_frames} frames at {info.sample_rate} Hz resample to 0 samples"
        )
    return out


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())
