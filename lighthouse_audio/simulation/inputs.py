"""User corpora for the simulator: a captioned foreground manifest and a background folder.

Foreground manifest: JSONL, one clip per line, ``path`` plus either ``captions`` (a list, as in
Clotho's five captions) or ``caption`` (one string). Relative paths are resolved against the
manifest's folder. Lines with a ``role`` other than ``"fg"`` are skipped, so a mixed manifest
such as ``shared/sounds/manifest.jsonl`` works unchanged; other keys are ignored::

    {"path": "fg/animal/dog_01.flac", "role": "fg", "caption": "a dog barks twice"}
    {"path": "/data/clotho/rain.wav", "captions": ["rain falls on a roof", "steady rain"]}

Backgrounds: every audio file under a folder (recursively), named by file stem.

>>> e = ForegroundEntry.from_dict({"path": "a.wav", "caption": "a dog barks"}, Path("/c"))
>>> e.path, e.captions, e.key
(PosixPath('/c/a.wav'), ['a dog barks'], 'a')
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lighthouse_audio.data.layout import AUDIO_EXTENSIONS
from lighthouse_audio.file_io import iter_jsonl

__all__ = [
    "BackgroundFile",
    "ForegroundEntry",
    "ManifestError",
    "find_backgrounds",
    "iter_foreground_lines",
    "load_foreground_manifest",
]


class ManifestError(ValueError):
    """A malformed manifest line; the message is ``"{path}:{line}: problem"``."""


@dataclass
class ForegroundEntry:
    """A captioned foreground clip. ``key`` names its trimmed copy: the ``key`` field, else the
    relative path flattened (``fg/animal/dog.flac`` -> ``fg__animal__dog``), else the stem of an
    absolute path; the loader suffixes repeats (``dog_2``)."""

    path: Path
    captions: list[str]
    key: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "captions": list(self.captions), "key": self.key}

    @classmethod
    def from_dict(cls, d: Any, base_dir: Path) -> ForegroundEntry:
        if not isinstance(d, dict):
            raise ManifestError(f"expected a JSON object, got {type(d).__name__}")
        path = d.get("path")
        if not isinstance(path, str) or not path.strip():
            raise ManifestError(f"path must be a non-empty string, got {path!r}")
        if "captions" in d:
            captions = d["captions"]
            if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
                raise ManifestError(f"captions must be a list of strings, got {captions!r}")
        elif "caption" in d:
            if not isinstance(d["caption"], str):
                raise ManifestError(f"caption must be a string, got {d['caption']!r}")
            captions = [d["caption"]]
        else:
            raise ManifestError(f"{path}: no caption (give 'caption' or 'captions')")
        captions = [c.strip() for c in captions if c.strip()]
        if not captions:
            raise ManifestError(f"{path}: every caption is empty")
        absolute = Path(path).is_absolute()
        full = Path(path) if absolute else base_dir / path
        key = d.get("key") or _key_from_path(Path(path).name if absolute else path)
        if not isinstance(key, str):
            raise ManifestError(f"key must be a string, got {key!r}")
        return cls(full, captions, key)


def _key_from_path(path: str) -> str:
    # The relative path without suffix, flattened: unique where the paths are, and safe as a
    # file name ("fg/animal/dog 1.flac" -> "fg__animal__dog_1").
    stem = str(Path(path).with_suffix(""))
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace(os.sep, "__")).strip("._") or "clip"


def iter_foreground_lines(path: Path) -> Iterator[tuple[str, Any]]:
    """``("{path}:{line}", parsed JSON)`` for every non-empty line whose ``role`` is ``fg`` or
    absent; a line that is not UTF-8 or not JSON raises :class:`ManifestError` naming it."""
    for lineno, d in iter_jsonl(path, error=ManifestError, objects=False):
        if isinstance(d, dict) and d.get("role", "fg") != "fg":
            continue
        yield f"{path}:{lineno}", d


def load_foreground_manifest(path: str | os.PathLike) -> list[ForegroundEntry]:
    """Read a foreground manifest; malformed lines raise :class:`ManifestError` naming the
    line (fix the file rather than silently losing clips). Whether the audio exists and decodes
    is checked later, per clip, when it is trimmed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such foreground manifest")
    entries: list[ForegroundEntry] = []
    keys: set[str] = set()
    for where, d in iter_foreground_lines(path):
        try:
            entry = ForegroundEntry.from_dict(d, path.parent)
        except ManifestError as e:
            raise ManifestError(f"{where}: {e}") from None
        if entry.key in keys:
            # Same stem in two folders (absolute paths): number it rather than refuse.
            entry.key = next(
                f"{entry.key}_{k}"
                for k in range(2, len(keys) + 3)
                if f"{entry.key}_{k}" not in keys
            )
        keys.add(entry.key)
        entries.append(entry)
    if not entries:
        raise ManifestError(f"{path}: no foreground entries")
    return entries


@dataclass(frozen=True)
class BackgroundFile:
    """A background recording; ``name`` prefixes its clips' names (``{name}_0.0_60.0``)."""

    path: Path
    name: str


def find_backgrounds(folder: str | os.PathLike) -> list[BackgroundFile]:
    """Audio files under ``folder`` (recursive, sorted, hidden files skipped), named by stem;
    stems that occur twice are named by their relative path instead (``rain__a``, ``wind__a``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such background folder")
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise FileNotFoundError(
            f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found for backgrounds"
        )
    stems: dict[str, int] = {}
    for p in files:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    out = []
    for p in files:
        name = p.stem if stems[p.stem] == 1 else _key_from_path(str(p.relative_to(folder)))
        out.append(BackgroundFile(p, re.sub(r"[^A-Za-z0-9._-]+", "_", name)))
    return out
