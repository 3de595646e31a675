"""From a name to a verified local file: the cache, the hub, a release URL, or a clear refusal.

Where a named file is looked for, in order:

1. ``<cache>/hub/files/<filename>``, for every entry (also where to put a file by hand offline);
   for an entry that is one ``member`` of a zip, ``<cache>/hub/files/<member>``;
2. for hub entries, the Hugging Face cache (``huggingface_hub``'s own, shared with other tools);
3. a download: hub files through ``huggingface_hub.hf_hub_download``, others from their URL
   (resumable, atomic; :mod:`.download`); a zip is unpacked (:mod:`.archive`: only its member,
   to the place above) and then removed. A zip put by hand at ``<cache>/hub/files/<filename>``
   is unpacked without a download.

The first time a file is used its sha256 is recorded (``<cache>/hub/checksums/<name>.json``, and
checked against the catalog's when it has one); every later use checks the file against the
record, so a file changed or truncated behind the package's back is refused, not loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lighthouse_audio.file_io import write_text
from lighthouse_audio.hub.archive import member_path, unpack_member
from lighthouse_audio.hub.catalog import PRETRAINED, Artifact
from lighthouse_audio.hub.download import (
    DownloadError,
    OfflineError,
    download_url,
    hub_cache_dir,
    is_offline,
    offline_reason,
    sha256_file,
)

__all__ = ["ChecksumError", "fetch", "fetch_hub_file", "resolve_checkpoint", "resolve_file"]

HF_PREFIX = "hf://"


class ChecksumError(DownloadError):
    """A cached file whose contents no longer match what was recorded or published."""


def local_path(artifact: Artifact) -> Path:
    """Where the named file is kept: ``files/<filename>``, or ``files/<member>`` for a zip's."""
    if artifact.member:
        return hub_cache_dir() / "files" / member_path(artifact.member)
    return hub_cache_dir() / "files" / artifact.filename


def archive_path(artifact: Artifact) -> Path:
    """Where a ``member`` entry's zip is downloaded to (and may be put by hand)."""
    return hub_cache_dir() / "files" / artifact.filename


def _record_path(name: str) -> Path:
    return hub_cache_dir() / "checksums" / f"{name}.json"


def _verify(artifact: Artifact, path: Path, digest: str | None = None) -> Path:
    """Check ``path`` against the catalog and the recorded sha256; record it the first time."""
    digest = digest or sha256_file(path)
    if artifact.sha256 and digest != artifact.sha256.lower():
        raise ChecksumError(
            f"{path}: sha256 {digest[:16]}... is not the published {artifact.sha256[:16]}... "
            f"of {artifact.name}; delete the file to download it again"
        )
    record_path = _record_path(artifact.name)
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("sha256") != digest:
            raise ChecksumError(
                f"{path}: sha256 {digest[:16]}... differs from the {str(record['sha256'])[:16]}... "
                f"recorded when {artifact.name} was first used; the file changed: delete it "
                "and its record to fetch it again"
            )
    else:
        record = {"sha256": digest, "size": path.stat().st_size, "source": artifact.source}
        write_text(record_path, json.dumps(record, indent=2) + "\n")
    return path


def _offline_refusal(artifact: Artifact) -> OfflineError:
    if artifact.member:
        return OfflineError(
            f"{artifact.name}: not in the cache and downloads are off ({offline_reason()}); "
            f"download {artifact.source} and put it at {archive_path(artifact)} (unpacked on "
            f"first use), or unzip it so that {local_path(artifact)} exists"
        )
    return OfflineError(
        f"{artifact.name}: not in the cache and downloads are off ({offline_reason()}); "
        f"download {artifact.source} and put it at {local_path(artifact)}"
    )


def fetch_hub_file(
    repo_id: str, filename: str, revision: str | None = None, progress: bool = True
) -> Path:
    """A hub file from the Hugging Face cache, downloading it when allowed."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        hit = try_to_load_from_cache(repo_id, filename, revision=revision)
    except Exception:  # noqa: BLE001 - a malformed cache entry is the same as a miss
        hit = None
    if isinstance(hit, str) and Path(hit).is_file():
        return Path(hit)
    if is_offline():
        raise OfflineError(
            f"hf://{repo_id}/{filename}: not in the Hugging Face cache and downloads are off "
            f"({offline_reason()})"
        )
    try:
        if not progress:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        # HF_ENDPOINT (a mirror) is read now, not when huggingface_hub was imported
        endpoint = os.environ.get("HF_ENDPOINT") or None
        return Path(hf_hub_download(repo_id, filename, revision=revision, endpoint=endpoint))
    except LocalEntryNotFoundError as exc:
        raise DownloadError(
            f"hf://{repo_id}/{filename}: cannot download ({_first_line(exc)})"
        ) from None
    except HfHubHTTPError as exc:
        raise DownloadError(f"hf://{repo_id}/{filename}: {_first_line(exc)}") from None
    except OSError as exc:
        raise DownloadError(f"hf://{repo_id}/{filename}: cannot download ({exc})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fetch(name_or_artifact: str | Artifact, progress: bool = True) -> Path:
    """The verified local path of a named file (see the module doc for where it looks)."""
    artifact = (
        name_or_artifact
        if isinstance(name_or_artifact, Artifact)
        else PRETRAINED.get(name_or_artifact)
    )
    placed = local_path(artifact)
    if placed.is_file():
        return _verify(artifact, placed)
    if artifact.hf_repo:
        try:
            path = fetch_hub_file(artifact.hf_repo, str(artifact.hf_filename), progress=progress)
        except OfflineError:
            raise _offline_refusal(artifact) from None
        return _verify(artifact, path)
    if artifact.member:
        return _verify(artifact, _fetch_member(artifact, progress))
    if is_offline():
        raise _offline_refusal(artifact)
    print(f"lighthouse: downloading {artifact.name} from {artifact.source}")
    digest = download_url(
        str(artifact.url), placed, expected_sha256=artifact.sha256, progress=progress
    )
    return _verify(artifact, placed, digest)


def _fetch_member(artifact: Artifact, progress: bool) -> Path:
    """Download the zip (unless already there), unpack the member, remove the zip: only the
    member is kept, and it is what the checksum record covers."""
    archive = archive_path(artifact)
    if not archive.is_file():
        if is_offline():
            raise _offline_refusal(artifact)
        print(f"lighthouse: downloading {artifact.name} from {artifact.source}")
        download_url(str(artifact.url), archive, progress=progress)
    placed = unpack_member(archive, str(artifact.member), local_path(artifact))
    archive.unlink(missing_ok=True)
    return placed


def resolve_file(reference: str | os.PathLike, kind: str, progress: bool = True) -> Path:
    """A path as given, a ``lighthouse models`` name of ``kind``, or ``hf://owner/repo/file``
    (``@revision`` optional)."""
    text = os.fspath(reference)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if text.startswith(HF_PREFIX):
        spec, _, revision = text[len(HF_PREFIX) :].partition("@")
        parts = spec.split("/")
        if len(parts) < 3:
            raise ValueError(f"{text}: expected hf://OWNER/REPO/FILE[@REVISION]")
        return fetch_hub_file("/".join(parts[:2]), "/".join(parts[2:]), revision or None, progress)
    if text in PRETRAINED:
        artifact = PRETRAINED.get(text)
        if artifact.kind != kind:
            raise ValueError(f"{text}: a {artifact.kind} file, not a {kind}")
        return fetch(artifact, progress)
    names = [a.name for a in PRETRAINED if a.kind == kind]
    raise FileNotFoundError(
        f"{text}: no such file, and not a known {kind} name "
        f"(known: {', '.join(names) or 'none'}; `lighthouse models` lists them)"
    )


def resolve_checkpoint(reference: str | os.PathLike, progress: bool = True) -> Path:
    return resolve_file(reference, "checkpoint", progress)
