"""Pre-extracted features on disk, one ``.npz`` per clip or query, in Lighthouse's layout.

Audio: ``{a_feat_dir}/{vid}.npz`` with key ``features`` (frames, D).
Text: ``{t_feat_dir}/qid{qid}.npz`` with key ``last_hidden_state`` (tokens, D).

Each array is read once, checked, cut to its first ``max_len`` rows, cast to float32 and
L2-normalised per row as ``x / (||x|| + 1e-5)`` (the epsilon is added to the norm, as
Lighthouse's ``l2_normalize_np_array`` does). Because the normalisation is per row, cutting before
normalising gives the same rows as Lighthouse's text path (which casts first) and its audio path
(which cuts first); cutting first just avoids casting frames that are thrown away.

>>> store = FeatureStore("features/clotho-moment/clap", "features", max_len=75, dim=768)
>>> store.get("Wildlife_0.0_60.0").shape  # doctest: +SKIP
(60, 768)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lighthouse_audio.data.layout import check_file_name

L2_EPS = 1e-5

# Which config key a stored array's width must match; named in dim-mismatch errors so the user
# knows which setting disagrees with the files.
DIM_CONFIG_KEYS = {"features": "a_feat_dim", "last_hidden_state": "t_feat_dim"}


class FeatureError(ValueError):
    """A feature file that is missing, unreadable or not what the config expects."""


def l2_normalize_rows(x: np.ndarray, eps: float = L2_EPS) -> np.ndarray:
    """Divide each row by (its Euclidean norm + eps), in the array's dtype."""
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + eps)


def _describe(e: Exception) -> str:
    first = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


class FeatureStore:
    """Read-once, in-memory cache of one folder of ``.npz`` feature files.

    Args:
        directory: folder holding the files.
        key: array name inside each ``.npz`` (``features`` or ``last_hidden_state``).
        max_len: keep only the first ``max_len`` rows; ``None`` (or Lighthouse's ``-1``) keeps all.
        dim: expected feature width; ``None`` accepts any.
        name_format: file name for a store name; text stores use ``"qid{}.npz"`` or are asked for
            ``f"qid{qid}"`` with the default ``"{}.npz"``.
        dim_name: config key named in a dim-mismatch error; defaults from ``key``.
        cache: keep arrays in memory after the first read. Arrays returned from the cache are
            shared: do not modify them in place.

    ``get`` raises :class:`FeatureError` with a one-line message naming the file.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        key: str,
        *,
        max_len: int | None,
        dim: int | None = None,
        name_format: str = "{}.npz",
        dim_name: str | None = None,
        cache: bool = True,
    ) -> None:
        if max_len is not None and max_len < 0:
            max_len = None  # Lighthouse's -1: no limit
        if max_len == 0:
            raise ValueError("max_len must be positive or None, got 0")
        self.directory = Path(directory)
        self.key = key
        self.max_len = max_len
        self.dim = dim
        self.name_format = name_format
        self.dim_name = dim_name or DIM_CONFIG_KEYS.get(key, "dim")
        self.cache = cache
        self._arrays: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return (
            f"FeatureStore({str(self.directory)!r}, key={self.key!r}, max_len={self.max_len}, "
            f"dim={self.dim}, cached={len(self._arrays)})"
        )

    def path(self, name: str) -> Path:
        """The file for ``name``; a name that would leave the folder is a ``ValueError``."""
        return self.directory / self.name_format.format(check_file_name(name, "feature name"))

    def exists(self, name: str) -> bool:
        return name in self._arrays or self.path(name).is_file()

    __contains__ = exists

    def get(self, name: str) -> np.ndarray:
        """float32 (L, D) array, L <= max_len, rows L2-normalised."""
        arr = self._arrays.get(name)
        if arr is None:
            arr = self._load(self.path(name))
            if self.cache:
                self._arrays[name] = arr
        return arr

    def preload(self, names: Iterable[str], progress: bool = True) -> None:
        """Read every named file now (e.g. before DataLoader workers fork, so they share it)."""
        todo = [n for n in dict.fromkeys(names) if n not in self._arrays]
        for name in tqdm(todo, desc=f"loading {self.key}", disable=not progress, leave=False):
            self.get(name)

    def _load(self, path: Path) -> np.ndarray:
        x = read_feature_array(path, self.key, self.max_len, self.dim, self.dim_name)
        return np.ascontiguousarray(l2_normalize_rows(x))


def read_feature_array(
    path: Path,
    key: str,
    max_len: int | None = None,
    dim: int | None = None,
    dim_name: str = "dim",
) -> np.ndarray:
    """float32 ``(L, D)`` array ``key`` of ``path`` as stored (not normalised), first ``max_len``
    rows. Any problem is a :class:`FeatureError` naming the file; a missing file too (callers
    that skip missing files check ``path.is_file()`` first)."""
    if not path.is_file():
        raise FeatureError(f"{path}: feature file not found")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile, zlib and format errors all mean "unreadable"
        raise FeatureError(f"{path}: cannot read npz ({_describe(e)})") from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise FeatureError(f"{path}: not an .npz archive (found a bare {type(npz).__name__})")
    with npz:
        if key not in npz.files:
            present = ", ".join(repr(name) for name in npz.files) or "none"
            raise FeatureError(f"{path}: no array {key!r} (keys present: {present})")
        try:
            raw = npz[key]
        except Exception as e:  # a truncated or corrupt member inside a valid zip
            raise FeatureError(f"{path}: cannot read {key!r} ({_describe(e)})") from e

    if raw.ndim != 2:
        raise FeatureError(
            f"{path}: {key!r} has shape {tuple(raw.shape)}, expected 2-D (frames, dim)"
        )
    if raw.shape[0] == 0:
        raise FeatureError(f"{path}: {key!r} has zero frames (shape {tuple(raw.shape)})")
    if dim is not None and raw.shape[1] != dim:
        raise FeatureError(f"{path}: feature dim {raw.shape[1]} != expected {dim} ({dim_name})")
    if not (np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype, np.integer)):
        raise FeatureError(f"{path}: {key!r} has non-numeric dtype {raw.dtype}")
    # cut first: no point casting dropped frames; an overflow to inf is reported just below
    with np.errstate(over="ignore"):
        x = raw[:max_len].astype(np.float32)
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise FeatureError(
            f"{path}: {key!r} has NaN/inf values (first at frame {bad[0]}, dim {bad[1]})"
        )
    return x
