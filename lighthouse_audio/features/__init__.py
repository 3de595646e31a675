"""Feature plugins: the (audio, text) embedding pairs models are trained on.

A feature spec fixes dimensions and the context mode, so a config names only ``a_feat_types``
and everything else follows. Encoders that compute these features join in the audio front-end.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lighthouse_audio.registry import FEATURES


@dataclass(frozen=True)
class FeatureSpec:
    """Shapes of one feature family as stored in Lighthouse's layout.

    Audio: ``{root}/{name}/{vid}.npz`` key ``features`` (frames, a_feat_dim).
    Text: ``{root}/{name}_text/qid{qid}.npz`` key ``last_hidden_state`` (tokens, t_feat_dim).
    """

    name: str
    domain: str
    a_feat_dim: int
    t_feat_dim: int
    ctx_mode: str = "audio_tef"
    frame_shift: float = 1.0
    description: str = ""
    # Builds the encoder that computes these features: ``encoder(**options) -> AudioTextEncoder``.
    # None for features that can only be read from disk.
    encoder: Callable[..., Any] | None = None
    # Builds the shared audio-text space over the stored features (lighthouse_audio.joint):
    # ``joint_space(path=None, **options) -> JointSpace``; ``path`` is a weights or joint-space
    # file. None for features with no such space.
    joint_space: Callable[..., Any] | None = None


def register_feature(spec: FeatureSpec) -> FeatureSpec:
    FEATURES.add(spec.name, spec, domain=spec.domain)
    return spec


def _build_clap_encoder(**options: Any) -> Any:
    from lighthouse_audio.encoders.clap import build_clap_encoder  # torch/transformers on demand

    return build_clap_encoder(**options)


def _build_clap_joint_space(path: str | os.PathLike | None = None) -> Any:
    from lighthouse_audio.joint.clap import build_clap_joint_space  # torch on demand

    return build_clap_joint_space(path)


register_feature(
    FeatureSpec(
        name="clap",
        domain="audio",
        a_feat_dim=768,
        t_feat_dim=768,
        description="MS-CLAP 2023: HTSAT pre-projection audio (1 s windows), GPT-2 token states",
        encoder=_build_clap_encoder,
        joint_space=_build_clap_joint_space,
    )
)
