"""``lighthouse align`` end to end: captioned clips -> trained joint-space file with its scores.

1. read the manifest's captioned clips and split them by recording (train / held-out);
2. encode both with the feature's encoder in stored form (cached, :mod:`.embed`);
3. train the two heads on the training clips (:mod:`.train`);
4. score text<->audio retrieval on the held-out clips (a clip: the mean of its unit window
   embeddings, renormalised) and save the space with the scores and provenance in ``meta``.

With ``recordings`` (a moment-retrieval annotation file and its stored features), step 3 also
contrasts each query's frames with the rest of its recording (:mod:`.recordings`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from lighthouse_audio.align.clips import load_captioned_clips, manifest_sha256, split_clips
from lighthouse_audio.align.embed import ClipFeatures, encode_clips
from lighthouse_audio.align.metrics import retrieval_recall
from lighthouse_audio.align.recordings import load_recording_queries
from lighthouse_audio.align.train import HeadsConfig, head_specs, train_heads
from lighthouse_audio.joint.space import JointSpace, TextPooling, build_head, save_joint_space
from lighthouse_audio.joint.trained import TrainedJointSpace, default_joint_space_path, path_stem

__all__ = ["AlignResult", "align_feature", "evaluate_space"]


@dataclass
class AlignResult:
    path: Path
    space: JointSpace
    metrics: dict[str, Any] | None  # None without held-out clips
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (clip key, reason)


def _check_trainable(feature: str) -> Any:
    from lighthouse_audio.registry import FEATURES

    spec = FEATURES.get(feature)
    if spec.encoder is None:
        raise ValueError(f"feature '{feature}' has no encoder: lighthouse align needs to run one")
    if spec.joint_space is not None and not isinstance(spec.joint_space, TrainedJointSpace):
        raise ValueError(
            f"feature '{feature}' has its own joint space (its encoder's projections); "
            "lighthouse align trains heads only for features without one"
        )
    return spec


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path}: already exists; pass --force to replace it or --out PATH")


@torch.inference_mode()
def evaluate_space(space: JointSpace, features: ClipFeatures) -> dict[str, Any]:
    """:func:`~lighthouse_audio.align.metrics.retrieval_recall` of ``space`` over the clips."""
    clips = [
        torch.nn.functional.normalize(space.embed_audio(torch.from_numpy(a)).mean(0), dim=-1)
        for a in features.audio
    ]
    texts, owners = [], []
    for i, states in enumerate(features.text):
        texts += [space.embed_text(torch.from_numpy(s)) for s in states]
        owners += [i] * len(states)
    return retrieval_recall(torch.stack(clips), torch.stack(texts), torch.tensor(owners))


def _pooled_text(space: JointSpace, features: ClipFeatures) -> list[torch.Tensor]:
    return [torch.stack([space.text_rows(torch.from_numpy(s)) for s in c]) for c in features.text]


def align_feature(
    manifest: str | os.PathLike,
    feature: str = "aisfx-minilm",
    out: str | os.PathLike | None = None,
    force: bool = False,
    heldout: float = 0.2,
    split_seed: int = 0,
    heads: HeadsConfig | None = None,
    text_pooling: TextPooling = "mean",
    input_norm: bool = False,
    device: str = "cpu",
    cache_dir: str | os.PathLike | None = None,
    cache: bool = True,
    batch_size: int = 64,
    encoder_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    recordings: str | os.PathLike | None = None,
    recordings_features: str | os.PathLike | None = None,
) -> AlignResult:
    """Train and save ``feature``'s joint space on ``manifest``'s captioned clips.

    ``out`` defaults to :func:`~lighthouse_audio.joint.trained.default_joint_space_path` for the
    encoder's weights (where the feature's factory looks); an existing file is an error unless
    ``force``. ``input_norm``: heads on L2-normalised rows (see :class:`JointSpace`), the
    kind AM-DETR's ``joint_prior`` needs. ``cache_dir`` defaults to
    ``{cache}/align/{feature}-{weights_id}``. ``heldout=0`` trains on every clip and measures
    no recall. ``recordings``: annotations (Lighthouse JSONL) whose queries' stored features lie
    under ``recordings_features`` (``{feature}/``, ``{feature}_text/``), for the in-recording
    loss; its recordings must not be ones the space will be tested on.
    """
    from lighthouse_audio import __version__
    from lighthouse_audio.paths import default_cache_dir

    heads = heads or HeadsConfig()
    spec = _check_trainable(feature)
    if (recordings is None) != (recordings_features is None):
        raise ValueError("recordings and recordings_features go together")
    clips = load_captioned_clips(manifest, log)
    queries = []
    if recordings is not None:  # read (and any malformed line refused) before the encoder runs
        queries = load_recording_queries(recordings, recordings_features, feature, log)
    train_clips, heldout_clips = split_clips(clips, heldout, split_seed)
    encoder = spec.encoder(**dict(encoder_options or {})).to(device)
    weights_id = encoder.weights_id()
    path = Path(out) if out is not None else default_joint_space_path(feature, weights_id)
    _refuse_overwrite(path, force)  # before minutes of encoding, and again before writing
    if cache and cache_dir is None:
        cache_dir = default_cache_dir() / "align" / path_stem(feature, weights_id)
    features_dir = Path(cache_dir) if cache else None

    encoded = encode_clips(encoder, clips, features_dir, batch_size, progress)
    for key, reason in encoded.skipped:
        log(f"skipped {key}: {reason}")
    index = {clip.key: i for i, clip in enumerate(encoded.clips)}
    parts = {}
    for name, members in (("train", train_clips), ("held-out", heldout_clips)):
        if name == "held-out" and not members:
            parts[name] = None
            continue
        kept = [index[c.key] for c in members if c.key in index]
        if not kept:
            raise ValueError(f"{manifest}: no readable {name} clip left ({len(members)} skipped)")
        parts[name] = ClipFeatures(
            clips=[encoded.clips[i] for i in kept],
            audio=[encoded.audio[i] for i in kept],
            text=[encoded.text[i] for i in kept],
        )
    train, held = parts["train"], parts["held-out"]

    specs = head_specs(heads, encoder.audio_dim, encoder.text_dim)
    space = JointSpace(
        feature,
        build_head(specs["audio"]),
        build_head(specs["text"]),
        text_pooling,
        specs,
        input_norm=input_norm,
    )
    recording_rows = [
        (torch.from_numpy(q.frames), space.text_rows(torch.from_numpy(q.tokens)),
         torch.from_numpy(q.inside))
        for q in queries
    ]  # fmt: skip
    history = train_heads(space, [torch.from_numpy(a) for a in train.audio],
                          _pooled_text(space, train), heads, device, progress,
                          recordings=recording_rows)  # fmt: skip
    metrics = evaluate_space(space, held) if held is not None else None
    space.meta = {
        "feature": feature,
        "weights_id": weights_id,
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "manifest": str(Path(manifest).resolve()),
        "manifest_sha256": manifest_sha256(manifest),
        "split_seed": split_seed,
        "heldout_fraction": heldout,
        "num_train_clips": len(train.clips),
        "num_heldout_clips": len(held.clips) if held is not None else 0,
        "num_train_windows": sum(len(a) for a in train.audio),
        "num_train_captions": sum(len(t) for t in train.text),
        "epochs": heads.epochs,
        "heads_config": heads.to_dict(),
        "train_loss": history["loss"],
        "temperature": history["temperature"],
        "encoder": dict(
            window=encoder.window,
            hop=encoder.hop,
            frames=encoder.frames,
            sample_rate=encoder.sample_rate,
        ),
        "device": str(device),
        "skipped": [key for key, _ in encoded.skipped],
        "heldout_recordings": sorted({c.recording for c in held.clips}) if held else [],
        "recordings": str(Path(recordings).resolve()) if recordings is not None else None,
        "recordings_sha256": manifest_sha256(recordings) if recordings is not None else None,
        "num_recording_queries": len(queries),
        "recall": metrics,
    }
    _refuse_overwrite(path, force)
    save_joint_space(path, space)
    return AlignResult(path, space, metrics, encoded.skipped)
