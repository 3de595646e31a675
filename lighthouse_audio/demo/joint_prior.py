"""The demo's optional joint-space prior for AM-DETR (``--joint-prior``): align on the train split.

``aisfx-minilm`` has no audio-text space of its own. ``lighthouse align --input-norm`` trains one
on the train split's captioned foreground clips only (their recordings are never in val or test),
and AM-DETR is trained with ``joint_prior=FILE`` (``lighthouse_audio/models/joint_prior.py``).
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
    recordings: Sequence[Recording], work: Path, *, input_norm: bool = True, progress: bool = True
) -> Path:
    """A joint space trained on ``recordings`` (the train split) in ``work``, reused when one of
    the same kind was trained on the same manifest; returns its path. ``input_norm``: heads on
    L2-normalised rows, as AM-DETR's prior needs (the sliding-window baseline reads raw rows)."""
    from lighthouse_audio.align.align_feature import align_feature
    from lighthouse_audio.align.clips import manifest_sha256
    from lighthouse_audio.joint.space import load_joint_space

    manifest = write_align_manifest(recordings, work / "align_train.jsonl")
    out = work / f"{FEATURE}-joint-train{'-l2' if input_norm else ''}.pt"
    if out.is_file():
        space = load_joint_space(out, FEATURE)
        same_kind = space.input_norm == input_norm
        if same_kind and space.meta.get("manifest_sha256") == manifest_sha256(manifest):
            print(f"  reusing the joint space {out}")
            return out
    align_feature(manifest, FEATURE, out=out, force=True, input_norm=input_norm,
                  cache_dir=work / "align-cache", progress=progress)  # fmt: skip
    return out
