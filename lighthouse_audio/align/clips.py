"""Captioned clips to align on, and their split by recording.

A manifest is JSONL, one clip per line: ``path`` (relative to the manifest's folder, or
absolute), ``caption`` (a string) or ``captions`` (a list of strings), and optionally ``role``
(lines with a role other than ``fg`` are not clips: ``shared/sounds`` backgrounds) and
``recording`` (clips cut from one recording share it; default: the path). Lines naming the same
path are one clip with all their captions (Clotho-style: five caption lines per file).

>>> clip = CaptionedClip(Path("/s/a.flac"), "a.flac", ("a dog barks",), "a.flac")
>>> clip.key, clip.captions
('a.flac', ('a dog barks',))
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighthouse_audio.data.splits import split_by_recording
from lighthouse_audio.simulation.inputs import (
    ForegroundEntry,
    ManifestError,
    iter_foreground_lines,
)

__all__ = ["CaptionedClip", "load_captioned_clips", "manifest_sha256", "split_clips"]

SPLIT_NAMES = ("train", "heldout")


@dataclass(frozen=True)
class CaptionedClip:
    """One audio file and what it sounds like. ``key`` is its manifest path (unique)."""

    path: Path
    key: str
    captions: tuple[str, ...]
    recording: str


def _uncaptioned(line: Any) -> bool:
    """A line with no caption text at all: skipped and counted. Malformed captions are
    :meth:`ForegroundEntry.from_dict`'s error."""
    if not isinstance(line, dict):
        return False
    found = line.get("captions", line.get("caption"))
    texts = [found] if isinstance(found, str) else found
    if texts is None:
        return True
    return isinstance(texts, list) and all(isinstance(t, str) and not t.strip() for t in texts)


def load_captioned_clips(
    manifest: str | os.PathLike, log: Callable[[str], None] = print
) -> list[CaptionedClip]:
    """The manifest's captioned clips whose file exists, in manifest order.

    Lines are read and checked as the simulator's foreground manifest is
    (:func:`~lighthouse_audio.simulation.inputs.iter_foreground_lines`, ``ForegroundEntry``).
    Lines without a caption and files that do not exist are skipped and reported through
    ``log`` (one line each kind); a missing manifest, a malformed line or no captioned clip at
    all raises a one-line error.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no such manifest")
    captions: dict[str, list[str]] = {}
    paths: dict[str, Path] = {}
    recordings: dict[str, str] = {}
    uncaptioned = 0
    for where, line in iter_foreground_lines(manifest):
        if _uncaptioned(line):
            uncaptioned += 1
            continue
        try:
            entry = ForegroundEntry.from_dict(line, manifest.parent)
        except ManifestError as e:
            raise ManifestError(f"{where}: {e}") from None
        key = line["path"]
        captions.setdefault(key, []).extend(entry.captions)
        paths.setdefault(key, entry.path)
        recordings.setdefault(key, str(line.get("recording") or key))
    clips = [
        CaptionedClip(paths[key], key, tuple(dict.fromkeys(texts)), recordings[key])
        for key, texts in captions.items()
    ]
    missing = [clip for clip in clips if not clip.path.is_file()]
    found = [clip for clip in clips if clip.path.is_file()]
    if not found:
        raise ValueError(
            f"{manifest}: no captioned clip found (lines need 'path' and 'caption' or 'captions'; "
            f"{uncaptioned} uncaptioned, {len(missing)} missing)"
        )
    if uncaptioned:
        log(f"{manifest}: {uncaptioned} clip line(s) without a caption skipped")
    if missing:
        log(f"{manifest}: {len(missing)} listed file(s) missing, e.g. {missing[0].path}")
    return found


def manifest_sha256(manifest: str | os.PathLike) -> str:
    return hashlib.sha256(Path(manifest).read_bytes()).hexdigest()


def split_clips(
    clips: Sequence[CaptionedClip], heldout: float, seed: int
) -> tuple[list[CaptionedClip], list[CaptionedClip]]:
    """``(train, heldout)`` by recording (:func:`~lighthouse_audio.data.splits.split_by_recording`,
    recordings weighted by their clip count): clips of one recording never land on both sides.
    Deterministic given ``seed``, whatever the clips' order. ``heldout=0``: every clip trains
    (nothing is left to measure recall on)."""
    if not 0.0 <= heldout < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1), got {heldout}")
    if heldout == 0.0:
        return sorted(clips, key=lambda c: c.key), []
    groups: dict[str, list[CaptionedClip]] = {}
    for clip in clips:
        groups.setdefault(clip.recording, []).append(clip)
    parts = split_by_recording(
        list(groups),
        (1.0 - heldout, heldout),
        seed,
        key=str,
        weight=lambda name: len(groups[name]),
        names=SPLIT_NAMES,
    )
    by_key = {name: sorted(members, key=lambda c: c.key) for name, members in groups.items()}
    train, held = ([c for name in parts[s] for c in by_key[name]] for s in SPLIT_NAMES)
    return train, held
