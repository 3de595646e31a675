"""The manifest written beside extracted features, so mismatched features are refused later.

``ROOT/<feature>/manifest.json`` records how the audio features were made: encoder, weights,
window, hop, frame convention, dims and package version. Extraction into a folder with a
different manifest is refused (it would mix features), and training checks it against the config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lighthouse_audio.data.layout import MANIFEST_NAME
from lighthouse_audio.file_io import write_text

# The config (and so checkpoint) key holding the manifest of the features a model was trained on.
CONFIG_KEY = "feature_manifest"

# Fields that must agree for two feature sets to be mixed or for a model to read them.
IDENTITY_FIELDS = ("feature", "weights_id", "sample_rate", "window", "hop", "frames", "audio_dim")


@dataclass(frozen=True)
class FeatureManifest:
    feature: str
    weights_id: str
    sample_rate: int
    window: float
    hop: float
    frames: str
    audio_dim: int
    text_dim: int
    text_mode: str
    package_version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureManifest:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def read_manifest(folder: Path) -> FeatureManifest | None:
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        return FeatureManifest.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable feature manifest ({exc})") from None


def write_manifest(folder: Path, manifest: FeatureManifest) -> None:
    write_text(Path(folder) / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=2))


def differences(a: FeatureManifest, b: FeatureManifest) -> list[str]:
    """``["window 1.0 != 4.0", ...]`` over the identity fields."""
    return [
        f"{name} {getattr(a, name)!r} != {getattr(b, name)!r}"
        for name in IDENTITY_FIELDS
        if getattr(a, name) != getattr(b, name)
    ]


def check_against_config(folder: Path, opt: Mapping[str, Any]) -> None:
    """Refuse features whose manifest contradicts the config (name, dims, hop) or, for a
    checkpoint's config, the manifest of the features it was trained on (window, frames...)."""
    manifest = read_manifest(folder)
    if manifest is None:
        return  # features made elsewhere (e.g. Lighthouse's released ones) carry no manifest
    problems = []
    if opt.get("a_feat_types") and manifest.feature != opt["a_feat_types"]:
        problems.append(f"feature {manifest.feature!r} != a_feat_types {opt['a_feat_types']!r}")
    if manifest.audio_dim != opt["a_feat_dim"]:
        problems.append(f"audio_dim {manifest.audio_dim} != a_feat_dim {opt['a_feat_dim']}")
    if manifest.text_dim != opt["t_feat_dim"]:
        problems.append(f"text_dim {manifest.text_dim} != t_feat_dim {opt['t_feat_dim']}")
    if abs(manifest.hop - float(opt["clip_length"])) > 1e-9:
        problems.append(f"hop {manifest.hop} s != clip_length {opt['clip_length']} s")
    trained_on = opt.get(CONFIG_KEY)
    if trained_on:  # a checkpoint's config: the model must read features made the same way
        problems += [
            f"{d} (features vs the model's training features)"
            for d in differences(manifest, FeatureManifest.from_dict(trained_on))
        ]
    if problems:
        raise ValueError(
            f"{Path(folder) / MANIFEST_NAME}: features do not fit the config: "
            + "; ".join(problems)
        )
