"""Similarity curves: one cosine similarity per frame for every query of a split.

Curves depend only on the features and the joint space, never on the threshold or median length,
so tuning computes them once and post-processes them for every grid point. Queries are grouped by
clip so each clip's audio is read and embedded once (many queries share a clip) and only one
clip's embeddings are held at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from lighthouse_audio.data.annotations import MomentQuery
from lighthouse_audio.data.layout import AUDIO_KEY, TEXT_KEY, FeatureLayout
from lighthouse_audio.joint.space import JointSpace, load_joint_space

from .frames import FrameLayout, load_raw

__all__ = ["SimilarityCurves", "build_joint_space", "compute_curves"]


@dataclass
class SimilarityCurves:
    """Per-query similarity curves of one split, in the split's order.

    ``queries[i]`` has curve ``curves[i]`` (``(L_i,)`` float32) with frame centres
    ``centres[i]``; ``skipped`` lists ``"qid: reason"`` for queries without feature files.
    """

    layout: FrameLayout
    queries: list[MomentQuery] = field(default_factory=list)
    curves: list[np.ndarray] = field(default_factory=list)
    centres: list[np.ndarray] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def ground_truth(self) -> list[dict[str, Any]]:
        """Annotation lines of the scored queries (what the evaluator compares against)."""
        return [q.to_dict() for q in self.queries]


def build_joint_space(feature: str, path: str | Path | None = None) -> tuple[JointSpace, str]:
    """The feature's joint space and a description of where it came from (for the run config).

    The feature's own factory (``FeatureSpec.joint_space``) gets ``path`` when it has one; a
    feature without a factory can still use a joint-space file written by ``lighthouse align``.
    """
    from lighthouse_audio.registry import FEATURES

    spec = FEATURES.get(feature)
    resolved = str(Path(path).resolve()) if path is not None else None
    factory = getattr(spec, "joint_space", None)
    if factory is not None:
        space = factory(path=resolved)
    elif resolved is not None:
        space = load_joint_space(resolved, feature=feature)
    else:
        raise ValueError(
            f"feature '{feature}' has no joint space; train one with `lighthouse align` "
            "and pass it with --joint-space"
        )
    source = resolved or str(space.meta.get("path") or f"the default joint space of {feature}")
    return space.eval(), source


@torch.inference_mode()
def compute_curves(
    queries: Sequence[MomentQuery],
    root: Path,
    feature: str,
    space: JointSpace,
    layout: FrameLayout,
    progress: bool = True,
) -> SimilarityCurves:
    """Similarity curves of ``queries`` over raw features under ``root`` (Lighthouse layout:
    ``{root}/{feature}/{vid}.npz`` key ``features``, ``{root}/{feature}_text/qid{qid}.npz`` key
    ``last_hidden_state``). A query whose audio or text file is missing is skipped; an unreadable
    or mis-shaped file is an error."""
    files = FeatureLayout(root, feature)
    by_vid: dict[str, list[int]] = defaultdict(list)
    for index, query in enumerate(queries):
        by_vid[query.vid].append(index)
    found: dict[int, np.ndarray] = {}
    skipped: dict[int, str] = {}
    for vid, indices in tqdm(by_vid.items(), desc="similarity", unit="clip", disable=not progress):
        try:
            frames = load_raw(files.audio_path(vid), AUDIO_KEY)
        except FileNotFoundError as e:
            skipped.update((i, f"{queries[i].qid}: {e}") for i in indices)
            continue
        audio = _embed(space.embed_audio, frames, files.audio_path(vid))
        for i in indices:
            path = files.text_path(queries[i].qid)
            try:
                tokens = load_raw(path, TEXT_KEY)
            except FileNotFoundError as e:
                skipped[i] = f"{queries[i].qid}: {e}"
                continue
            text = _embed(space.embed_text, tokens, path)
            found[i] = (audio @ text).numpy().astype(np.float32)

    result = SimilarityCurves(layout)
    for i, query in enumerate(queries):
        if i in found:
            result.queries.append(query)
            result.curves.append(found[i])
            result.centres.append(layout.centres(len(found[i])))
        else:
            result.skipped.append(skipped[i])
    return result


def _embed(head: Any, x: np.ndarray, path: Path) -> torch.Tensor:
    try:
        return head(torch.from_numpy(x))
    except RuntimeError as e:  # shape mismatch with the head: features of another encoder
        first = str(e).splitlines()[0]
        raise ValueError(
            f"{path}: shape {tuple(x.shape)} does not fit the joint space ({first})"
        ) from None
