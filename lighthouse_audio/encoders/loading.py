"""Loading encoder weights offline and naming them: ``from_pretrained`` wrappers and digests.

``weights_id()`` of every encoder comes from here, so feature manifests name weights the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def load_hf_pretrained(loader, name_or_path: str | Path, allow_download: bool, what: str):
    """``loader.from_pretrained`` (e.g. ``AutoModel``), offline unless ``allow_download``.

    Missing files raise a one-line ``FileNotFoundError`` naming ``what`` ("text model") and the
    path, instead of transformers' multi-paragraph hub error.
    """
    try:
        return loader.from_pretrained(str(name_or_path), local_files_only=not allow_download)
    except OSError as exc:
        hint = "" if allow_download else " (offline: pass a local directory or allow_download=True)"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"cannot load {what} '{name_or_path}'{hint}: {first_line}"
        raise FileNotFoundError(message) from None


def sha256_files(paths: Iterable[str | Path], length: int = 12) -> str:
    """Hex sha256 prefix over the concatenated contents of ``paths``."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:length]


def hf_weights_digest(model) -> str:
    """A transformers model's hub commit if it came from the hub cache, else a sha256 prefix of
    the weights file in its local directory, else ``"unknown"``."""
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return str(commit)[:12]
    source = Path(str(getattr(model.config, "_name_or_path", "") or model.name_or_path))
    for name in WEIGHT_FILES:
        if (source / name).is_file():
            return sha256_files([source / name])
    return "unknown"
