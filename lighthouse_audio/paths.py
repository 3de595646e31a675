"""Where the package keeps what it downloads, rebuilds or trains once (one root for all)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """``$LIGHTHOUSE_AUDIO_CACHE``, else ``$XDG_CACHE_HOME/lighthouse-audio``, else
    ``~/.cache/lighthouse-audio``."""
    if os.environ.get("LIGHTHOUSE_AUDIO_CACHE"):
        return Path(os.environ["LIGHTHOUSE_AUDIO_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lighthouse-audio"
