"""A folder of sounds laid out like ``shared/sounds``: ``manifest.jsonl`` plus the audio files.

Each manifest line has ``path`` (relative to the folder), ``role`` (``fg``: a captioned event,
``bg``: an ambience) and, for foregrounds, ``caption`` (and optionally ``captions``: every
caption of the clip, Clotho-style paraphrases, the first being ``caption``); ``label`` and
``duration`` (seconds) are used when present. Other keys (licence, source) are ignored here.

>>> r = Recording.from_dict({"path": "fg/a.flac", "role": "fg", "caption": "a dog"}, Path("/s"))
>>> r.path, r.key
(PosixPath('/s/fg/a.flac'), 'fg/a.flac')
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from lighthouse_audio.file_io import iter_jsonl

__all__ = ["Recording", "load_sound_set"]


@dataclass(frozen=True)
class Recording:
    """One file of a sound set; ``key`` is its path relative to the set (unique)."""

    path: Path
    key: str
    role: str
    caption: str | None = None
    label: str | None = None
    duration: float | None = None
    captions: tuple[str, ...] = ()  # all captions when the manifest gives several

    @property
    def all_captions(self) -> list[str]:
        """Every caption of the clip (the primary one alone when there are no paraphrases)."""
        if self.captions:
            return list(self.captions)
        return [self.caption] if self.caption else []

    @classmethod
    def from_dict(cls, d: dict[str, Any], root: Path) -> Recording:
        path, role = d.get("path"), d.get("role")
        if not isinstance(path, str) or not path:
            raise ValueError(f"path must be a non-empty string, got {path!r}")
        if role not in ("fg", "bg"):
            raise ValueError(f"{path}: role must be 'fg' or 'bg', got {role!r}")
        caption = d.get("caption")
        if role == "fg" and not (isinstance(caption, str) and caption.strip()):
            raise ValueError(f"{path}: a foreground needs a caption")
        captions = d.get("captions", [])
        if not isinstance(captions, list) or not all(
            isinstance(c, str) and c.strip() for c in captions
        ):
            raise ValueError(f"{path}: captions must be a list of non-empty strings")
        duration = d.get("duration")
        return cls(
            path=root / path,
            key=path,
            role=role,
            caption=caption,
            label=d.get("label"),
            duration=float(duration) if duration is not None else None,
            captions=tuple(captions),
        )

    def seconds(self) -> float:
        """The duration: from the manifest, else from the file header."""
        if self.duration is not None:
            return self.duration
        return sf.info(os.fspath(self.path)).duration


def load_sound_set(
    folder: str | os.PathLike, log: Callable[[str], None] | None = None
) -> list[Recording]:
    """Every line of ``folder/manifest.jsonl`` whose file exists (missing files are reported
    through ``log``); a missing manifest, a malformed line or a set without foregrounds or
    backgrounds raises an error naming the problem."""
    log = log or (lambda line: print(line, file=sys.stderr))
    folder = Path(folder)
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no manifest (a sound folder needs manifest.jsonl)")
    recordings, missing = [], []
    for lineno, line in iter_jsonl(manifest, objects=False):
        try:
            recording = Recording.from_dict(line, folder)
        except (ValueError, AttributeError) as e:
            raise ValueError(f"{manifest}:{lineno}: {e}") from None
        (recordings if recording.path.is_file() else missing).append(recording)
    if missing:
        log(f"{manifest}: {len(missing)} listed file(s) missing, e.g. {missing[0].path}")
    for role, what in (("fg", "captioned foreground"), ("bg", "background")):
        if not any(r.role == role for r in recordings):
            raise ValueError(
                f"{manifest}: no {what} file found ({len(missing)} listed file(s) missing)"
            )
    return recordings
