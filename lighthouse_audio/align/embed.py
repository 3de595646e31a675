"""Clips and captions -> the encoder's stored-feature form, cached so reruns skip the encoder.

Audio goes through the same path as ``lighthouse extract`` (:func:`encode_recording`: the
encoder's window, hop and frame convention), so the heads are trained on exactly the rows a
stored ``{vid}.npz`` holds; text is ``encoder.encode_text`` (token states, a ``qid*.npz``).

Cache: ``{cache_dir}/audio/{sha}.npz`` per clip, keyed by the encoder's weights id, the window
settings and the file's resolved path, size and modification time; ``{cache_dir}/text/{sha}.npz``
per caption, keyed by the weights id and the caption. Files are written atomically and verified
on read (shape, finiteness), so an interrupted run leaves nothing broken behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lighthouse_audio.align.clips import CaptionedClip
from lighthouse_audio.audio.decode import AudioError
from lighthouse_audio.encoders.base import AudioTextEncoder
from lighthouse_audio.extraction.extract import chunks, encode_recording, is_complete
from lighthouse_audio.file_io import remove_stale_temporaries, save_npz

__all__ = ["ClipFeatures", "encode_clips"]


@dataclass
class ClipFeatures:
    """Stored-form features of the clips that could be read, in input order.

    ``audio[i]`` is ``(num_windows, audio_dim)``; ``text[i][j]`` is ``(num_tokens, text_dim)``
    for caption ``j`` of ``clips[i]``; ``skipped`` lists ``(key, one-line reason)``.
    """

    clips: list[CaptionedClip] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    text: list[list[np.ndarray]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def _audio_key(encoder: AudioTextEncoder, clip: CaptionedClip) -> str:
    path = clip.path.resolve()
    stat = path.stat()
    settings = (encoder.window, encoder.hop, encoder.frames, encoder.sample_rate)
    return _digest(
        encoder.name, encoder.weights_id(), settings, path, stat.st_size, stat.st_mtime_ns
    )


def _read(path: Path | None, key: str, dim: int) -> np.ndarray | None:
    if path is None or not is_complete(path, key, dim):
        return None
    with np.load(path) as data:
        return data[key]


def encode_clips(
    encoder: AudioTextEncoder,
    clips: Sequence[CaptionedClip],
    cache_dir: Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> ClipFeatures:
    """Encode every clip's audio windows and captions (``cache_dir=None``: no cache).

    A clip whose audio cannot be decoded is skipped and reported, never fatal.
    """
    out = ClipFeatures()
    if cache_dir is not None:  # what a killed run was writing when it died
        remove_stale_temporaries(cache_dir, recursive=True)
    for clip in tqdm(clips, desc="audio", unit="clip", disable=not progress):
        try:
            cached = cache_dir / "audio" / f"{_audio_key(encoder, clip)}.npz" if cache_dir else None
            features = _read(cached, "features", encoder.audio_dim)
            if features is None:
                features, _ = encode_recording(
                    encoder, clip.path, encoder.window, encoder.hop, encoder.frames, batch_size
                )
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    save_npz(cached, features=features)
        except (AudioError, OSError) as e:
            out.skipped.append((clip.key, str(e).strip().splitlines()[0] if str(e) else repr(e)))
            continue
        out.clips.append(clip)
        out.audio.append(features)

    captions = list(dict.fromkeys(c for clip in out.clips for c in clip.captions))
    states = _encode_captions(encoder, captions, cache_dir, batch_size, progress)
    out.text = [[states[c] for c in clip.captions] for clip in out.clips]
    return out


def _encode_captions(
    encoder: AudioTextEncoder,
    captions: list[str],
    cache_dir: Path | None,
    batch_size: int,
    progress: bool,
) -> dict[str, np.ndarray]:
    weights_id = encoder.weights_id()

    def cache_path(caption: str) -> Path | None:
        if cache_dir is None:
            return None
        return cache_dir / "text" / f"{_digest(encoder.name, weights_id, caption)}.npz"

    states: dict[str, np.ndarray] = {}
    for caption in captions:
        found = _read(cache_path(caption), "last_hidden_state", encoder.text_dim)
        if found is not None:
            states[caption] = found
    todo = [c for c in captions if c not in states]
    with tqdm(total=len(todo), desc="text", unit="caption", disable=not progress) as bar:
        for batch in chunks(todo, batch_size):
            for caption, state in zip(batch, encoder.encode_text(list(batch)), strict=True):
                states[caption] = state = np.asarray(state, dtype=np.float32)
                if (path := cache_path(caption)) is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    save_npz(path, last_hidden_state=state)
            bar.update(len(batch))
    return states
