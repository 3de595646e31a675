"""Where features live on disk: Lighthouse's layout, spelled once.

::

    ROOT/<feature>/{vid}.npz                key "features"           (frames, audio_dim)
    ROOT/<feature>/manifest.json            how they were made (data.feature_manifest)
    ROOT/<feature>_text/qid{qid}.npz        key "last_hidden_state"  (tokens, text_dim)

``vid`` and ``qid`` come from annotation files; a name that would leave its folder (a path
separator, ``..``, a leading dot, a NUL) is refused, so an annotation line never reaches a file
elsewhere.

>>> layout = FeatureLayout("features/clotho-moment", "clap")
>>> layout.text_path(37612).as_posix()
'features/clotho-moment/clap_text/qid37612.npz'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUDIO_EXTENSIONS",
    "AUDIO_KEY",
    "MANIFEST_NAME",
    "TEXT_KEY",
    "FeatureLayout",
    "check_file_name",
    "find_audio_files",
    "is_audio_file",
    "text_name",
]

AUDIO_KEY = "features"
TEXT_KEY = "last_hidden_state"
MANIFEST_NAME = "manifest.json"
# What libsndfile decodes (soundfile): WAV, FLAC, Ogg Vorbis/Opus, MP3 (libsndfile >= 1.1), AIFF.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")


def check_file_name(name: object, what: str) -> str:
    """``str(name)`` if it can be a file name inside a folder, else a one-line ``ValueError``."""
    text = str(name)
    if (
        not text
        or text in (".", "..")
        or text.startswith(".")
        or "\x00" in text
        or any(sep in text for sep in ("/", "\\", os.sep))
    ):
        raise ValueError(f"{what} {text!r} cannot be a file name (it would leave its folder)")
    return text


def text_name(qid: object) -> str:
    """The text feature's file stem for a query: ``qid{qid}``."""
    return f"qid{check_file_name(qid, 'qid')}"


@dataclass(frozen=True)
class FeatureLayout:
    """The folders of one feature under a features root."""

    root: Path
    feature: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        check_file_name(self.feature, "feature name")

    @property
    def audio_dir(self) -> Path:
        return self.root / self.feature

    @property
    def text_dir(self) -> Path:
        return self.root / f"{self.feature}_text"

    @property
    def manifest_path(self) -> Path:
        return self.audio_dir / MANIFEST_NAME

    def audio_path(self, vid: object) -> Path:
        return self.audio_dir / f"{check_file_name(vid, 'vid')}.npz"

    def text_path(self, qid: object) -> Path:
        return self.text_dir / f"{text_name(qid)}.npz"


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()


def find_audio_files(folder: Path) -> list[Path]:
    """Every audio file under ``folder`` (recursively), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if is_audio_file(p))
