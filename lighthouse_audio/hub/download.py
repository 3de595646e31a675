"""Downloading a file once, safely: resumable, checked, atomic, and never when offline.

A download goes to ``FILE.partial`` beside its final place and is renamed only when complete and
its sha256 is right, so the cache never holds a half-written file under the real name. An
interrupted download (network error, Ctrl-C) leaves the ``.partial`` for the next attempt, which
resumes it with an HTTP ``Range`` request; a full disk or a wrong checksum removes it.

Offline mode (``HF_HUB_OFFLINE=1``, the Hugging Face convention, or ``LIGHTHOUSE_AUDIO_OFFLINE=1``)
refuses every download with one line saying which file to put where.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from lighthouse_audio.paths import default_cache_dir

__all__ = [
    "DownloadError",
    "OfflineError",
    "download_url",
    "hub_cache_dir",
    "is_offline",
    "offline_reason",
    "sha256_file",
]

OFFLINE_ENV = "LIGHTHOUSE_AUDIO_OFFLINE"
HF_OFFLINE_ENV = "HF_HUB_OFFLINE"
USER_AGENT = "lighthouse-audio (+https://github.com/line/lighthouse compatible)"
BLOCK = 1 << 20


class DownloadError(RuntimeError):
    """A download that failed; the message is one line naming the address and the problem."""


class OfflineError(DownloadError):
    """A file is needed, is not in the cache, and downloads are switched off."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def offline_reason() -> str | None:
    """Which switch turned downloads off, or None when they are allowed."""
    for name in (OFFLINE_ENV, HF_OFFLINE_ENV):
        if _truthy(os.environ.get(name)):
            return f"{name}={os.environ[name]}"
    return None


def is_offline() -> bool:
    return offline_reason() is not None


def hub_cache_dir() -> Path:
    """Where downloaded files live: ``<cache>/hub`` (see ``paths.default_cache_dir``)."""
    return default_cache_dir() / "hub"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def download_url(
    url: str,
    dest: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> str:
    """Download ``url`` to ``dest`` (resuming ``dest.partial``); returns the file's sha256.

    Raises :class:`DownloadError` (one line) on a network failure (the partial file is kept for
    a resume), a full disk or a checksum mismatch (the partial file is removed).
    """
    dest = Path(dest)
    if is_offline():
        raise OfflineError(
            f"{url}: downloads are off ({offline_reason()}); download it and put it at {dest}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    have = partial.stat().st_size if partial.is_file() else 0
    try:
        response = _open(url, have, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file already holds every byte
            response = None
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot download ({reason})") from None
    if response is not None:
        _receive(response, url, partial, have, progress, dest.name)
    digest = sha256_file(partial)
    if expected_sha256 and digest != expected_sha256.lower():
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: checksum mismatch (sha256 {digest[:16]}..., expected "
            f"{expected_sha256[:16]}...); the download was removed"
        )
    os.replace(partial, dest)
    return digest


def _receive(
    response: http.client.HTTPResponse,
    url: str,
    partial: Path,
    have: int,
    progress: bool,
    label: str,
) -> None:
    """Append (``206``) or write (``200``) the body to ``partial``, fsync'd."""
    with response:
        resumed = response.status == 206
        if not resumed:
            have = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        mode = "ab" if resumed else "wb"
        try:
            with (
                open(partial, mode) as out,
                tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=label, disable=not progress, leave=False,
                ) as bar,
            ):  # fmt: skip
                while block := response.read(BLOCK):
                    out.write(block)
                    bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                partial.unlink(missing_ok=True)
                raise DownloadError(
                    f"{url}: disk full while writing {partial.parent} ({exc.strerror}); the "
                    "partial download was removed"
                ) from None
            if isinstance(exc, (socket.timeout, ConnectionError)):
                raise _interrupted(url, partial, total) from None
            raise DownloadError(f"{url}: cannot write {partial} ({exc})") from None
        except http.client.IncompleteRead:
            raise _interrupted(url, partial, total) from None
    size = partial.stat().st_size
    if total is not None and size < total:
        raise _interrupted(url, partial, total)


def _interrupted(url: str, partial: Path, total: int | None) -> DownloadError:
    size = partial.stat().st_size if partial.exists() else 0
    of = f" of {total}" if total else ""
    return DownloadError(
        f"{url}: download interrupted after {size}{of} bytes; run again to resume it"
    )
