"""The ``m2d-clap`` joint space over stored features: no heads, the query's [CLS] token.

Stored ``m2d-clap`` audio rows already are M2D-CLAP's joint-space audio embeddings
(``encode_clap_audio`` per window), and the 2025 model has no text projection: its text
embedding is BERT's [CLS] state, the first stored token. So the space is two identities with
``text_pooling="first"``, built without loading any weights. ``input_norm`` holds trivially
(cosine similarity of unprojected rows), so the raw rows and AM-DETR's L2-normalised ones give
the same similarities.

One difference from ``M2DClapEncoder.encode_text_pooled``: stored tokens come from the query
truncated to 32 tokens, so for a longer query [CLS] has seen less context than the untruncated
[CLS] the reference's ``encode_clap_text`` gives.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from lighthouse_audio.joint.space import JointSpace, load_joint_space

__all__ = ["build_m2d_clap_joint_space"]


def build_m2d_clap_joint_space(
    path: str | os.PathLike | None = None, **_options: Any
) -> JointSpace:
    """The built-in space (identities, [CLS] pooling); ``path`` instead loads a joint-space file
    for ``m2d-clap`` written by ``save_joint_space``. Encoder options are not needed."""
    if path is not None:
        return load_joint_space(path, feature="m2d-clap")
    return JointSpace("m2d-clap", nn.Identity(), nn.Identity(), "first", input_norm=True).eval()
