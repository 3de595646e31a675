"""Released checkpoints and encoder weights by name: catalog, cache, downloads, offline mode."""

from lighthouse_audio.hub.catalog import PRETRAINED, Artifact, register_artifact
from lighthouse_audio.hub.download import DownloadError, OfflineError, is_offline
from lighthouse_audio.hub.fetch import (
    ChecksumError,
    fetch,
    fetch_hub_file,
    resolve_checkpoint,
    resolve_file,
)

__all__ = [
    "PRETRAINED",
    "Artifact",
    "ChecksumError",
    "DownloadError",
    "OfflineError",
    "fetch",
    "fetch_hub_file",
    "is_offline",
    "register_artifact",
    "resolve_checkpoint",
    "resolve_file",
]
