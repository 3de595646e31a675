"""The demo's optional joint-space prior for AM-DETR (``--joint-prior``): align on the train split.

``aisfx-minilm`` has no audio-text space of its own. ``lighthouse align --input-norm`` trains one
on the train split's captioned foreground clips only (their recordings are never in val or test),
and AM-DETR is trained with ``joint_prior=FILE`` (``lighthouse_audio/models/joint_prior.py``).
Every train clip trains by default (no held-out part: the demo measures the space by what it
finds in the val and test recordings). For the prior, the simulated training clips' moments are
hard negatives too (``align --recordings``): part of AM-DETR's training, which uses those
annotations anyway; the zero-shot baseline's space sees captioned clips only, as CLAP does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lighthouse_audio.demo.sound_set import Recording
from lighthouse_audio.file_io import write_text

__all__ = ["align_train_split", "write_align_manifest"]

FEATURE = "aisfx-minilm"


def write_align_manifest(recordings: Sequence[Recording], out: Path) -> Path:
    """The captioned foregrounds among ``recordings`` as an align manifest (absolute paths,
    ``recording`` = the sound's key, so align's own held-out part is split by recording too).
    Rewritten only when its content changes, so its hash keys the joint space."""
    lines = [
        json.dumps({"path": str(r.path.resolve()), "captions": r.all_captions, "recording": r.key})
        for r in recordings
        if r.role == "fg" and r.all_captions
    ]
    content = "".join(line + "\n" for line in lines)
    if not out.is_file() or out.read_text(encoding="utf-8") != content:
        write_text(out, content)
    return out


def align_train_split(
    recordings: Sequence[Recording],
    work: Path,
    *,
    input_norm: bool = True,
    moments: tuple[Path, Path] | None = None,
    heldout: float = 0.0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Path:
    """A joint space trained on ``recordings`` (the train split) in ``work``, reused when one of
    the same kind was trained on the same inputs; returns its path. ``input_norm``: heads on
    L2-normalised rows, as AM-DETR's prior needs (the sliding-window baseline reads raw rows).
    ``moments``: ``(annotations, features root)`` of training recordings for in-recording hard
    negatives. ``heldout``: the fraction of clips align keeps out to report recall (0: none).
    ``cache_dir``: encoded clips (default ``work/align-cache``)."""
    from lighthouse_audio.align.align_feature import align_feature
    from lighthouse_audio.align.clips import manifest_sha256
    from lighthouse_audio.joint.space import load_joint_space

    manifest = write_align_manifest(recordings, work / "align_train.jsonl")
    name = f"{FEATURE}-joint-train{'-l2' if input_norm else ''}{'-moments' if moments else ''}"
    out = work / f"{name}.pt"
    wanted = {
        "input_norm": input_norm,
        "manifest_sha256": manifest_sha256(manifest),
        "heldout_fraction": heldout,
        "recordings_sha256": manifest_sha256(moments[0]) if moments else None,
    }
    if out.is_file():
        space = load_joint_space(out, FEATURE)
        found = {**space.meta, "input_norm": space.input_norm}
        if all(found.get(key) == value for key, value in wanted.items()):
            print(f"  reusing the joint space {out}")
            return out
    align_feature(manifest, FEATURE, out=out, force=True, heldout=heldout, input_norm=input_norm,
                  cache_dir=cache_dir or work / "align-cache", progress=progress,
                  recordings=moments[0] if moments else None,
                  recordings_features=moments[1] if moments else None)  # fmt: skip
    return out


def cross_fitted_folds(
    recordings: Sequence[Recording],
    work: Path,
    moments: tuple[Path, Path],
    folds: int = 4,
    seed: int = 0,
    heldout: float = 0.0,
    progress: bool = True,
) -> Path:
    """Fold spaces for the prior (``joint_prior_folds``, models/joint_prior.py): the train split's
    sounds dealt into ``folds`` groups; space ``k`` is aligned like the full one, on every sound
    outside group ``k`` (their clips, and the training queries about them as hard negatives),
    and scores the training queries about group ``k``'s sounds. A query is tied to its sound by
    its caption; queries whose caption names no train sound keep the full space. Returns the
    folds file (reused, like the spaces, while the inputs are the same)."""
    import random

    from lighthouse_audio.data.annotations import load_queries, save_queries

    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    from lighthouse_audio.models.joint_prior import write_prior_folds

    sounds = sorted((r for r in recordings if r.role == "fg" and r.all_captions),
                    key=lambda r: r.key)  # fmt: skip
    random.Random(seed).shuffle(sounds)
    group = {r.key: i % folds for i, r in enumerate(sounds)}
    sound_of = {c: r.key for r in sounds for c in r.all_captions}
    queries = load_queries(moments[0])
    fold_of = {str(q.qid): group[sound_of[q.query]] for q in queries if q.query in sound_of}
    spaces = []
    for k in range(folds):
        kept = [r for r in sounds if group[r.key] != k]
        fold_dir = work / f"fold{k}-of-{folds}"
        annotations = fold_dir / "moments.jsonl"
        content = [q for q in queries if fold_of.get(str(q.qid), -1) not in (k, -1)]
        fold_dir.mkdir(parents=True, exist_ok=True)
        save_queries(content, annotations)
        fold_moments = (annotations, moments[1]) if content else None  # tiny sets: none left
        spaces.append(align_train_split(kept, fold_dir, moments=fold_moments, heldout=heldout,
                                        cache_dir=work / "align-cache",
                                        progress=progress))  # fmt: skip
    return write_prior_folds(work / f"prior-folds-{folds}.json", spaces, fold_of)
