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
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lighthouse_audio.demo.split import split_by_recording

__all__ = ["CaptionedClip", "load_captioned_clips", "manifest_sha256", "split_clips"]

SPLIT_NAMES = ("train", "heldout")


@dataclass(frozen=True)
class CaptionedClip:
    """One audio file and what it sounds like. ``key`` is its manifest path (unique)."""

    path: Path
    key: str
    captions: tuple[str, ...]
    recording: str


def _captions(line: dict, where: str) -> list[str]:
    found = line.get("captions", line.get("caption"))
    if found is None:
        return []
    if isinstance(found, str):
        found = [found]
    if not isinstance(found, list) or not all(isinstance(c, str) for c in found):
        raise ValueError(f"{where}: caption(s) must be a string or a list of strings")
    return [c.strip() for c in found if c.strip()]


def load_captioned_clips(
    manifest: str | os.PathLike, log: Callable[[str], None] = print
) -> list[CaptionedClip]:
    """The manifest's captioned clips whose file exists, in manifest order.

    Lines without a caption and files that do not exist are skipped and reported through
    ``log`` (one line each kind); a missing manifest, a malformed line or no captioned clip at
    all raises a one-line error.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no such manifest")
    root = manifest.parent
    captions: dict[str, list[str]] = {}
    recordings: dict[str, str] = {}
    uncaptioned = 0
    with open(manifest, encoding="utf-8") as f:
        for lineno, text in enumerate(f, 1):
            if not text.strip():
                continue
            where = f"{manifest}:{lineno}"
            try:
                line = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not JSON ({e.msg})") from None
            if not isinstance(line, dict):
                raise ValueError(f"{where}: expected a JSON object")
            path = line.get("path")
            if not isinstance(path, str) or not path:
                raise ValueError(f"{where}: path must be a non-empty string, got {path!r}")
            if line.get("role", "fg") != "fg":
                continue
            found = _captions(line, where)
            if not found:
                uncaptioned += 1
                continue
            captions.setdefault(path, []).extend(found)
            recordings.setdefault(path, str(line.get("recording") or path))
    clips = [
        CaptionedClip(root / key, key, tuple(dict.fromkeys(texts)), recordings[key])
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
    """``(train, heldout)`` by recording (:func:`~lighthouse_audio.demo.split.split_by_recording`,
    recordings weighted by their clip count): clips of one recording never land on both sides.
    Deterministic given ``seed``, whatever the clips' order."""
    if not 0.0 < heldout < 1.0:
        raise ValueError(f"held-out fraction must be between 0 and 1, got {heldout}")
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
