"""The ``clap`` joint space: MS-CLAP 2023's own projection heads over the stored features.

Stored ``clap`` audio rows are HTSAT's embedding before ``audio_encoder.projection`` and stored
text rows are GPT-2's token states, so the heads are msclap's two projections
(:class:`~lighthouse_audio.encoders.clap.ClapProjection`, 768 -> 1024) read from the same weights
file the encoder uses, and the query vector is the last stored token, ``<|endoftext|>``.

One msclap quirk cannot be reproduced from stored tokens: msclap pools at
``(input_ids != 0).sum(-1) - 1`` and ``!`` is its pad token (id 0, attention 1), so for a caption
with ``k`` exclamation marks msclap pools ``k`` tokens before EOT (the ``" "`` token or a text
token). The stored states keep no token ids, so this space always pools EOT: for captions with
``!`` it differs from ``MSClap2023Encoder.encode_text_pooled`` (arguably for the better: EOT is
the token msclap was trained to pool when no ``!`` is present, i.e. almost always).
"""

from __future__ import annotations

import os

from lighthouse_audio.encoders.clap.networks import ClapProjection
from lighthouse_audio.encoders.clap.weights import (
    convert_msclap_state_dict,
    find_clap_weights,
    load_clap_weights,
    load_module,
)
from lighthouse_audio.joint.space import JointSpace

__all__ = ["build_clap_joint_space"]


def build_clap_joint_space(path: str | os.PathLike | None = None) -> JointSpace:
    """MS-CLAP 2023's projections as a :class:`JointSpace` (1024-d, ``text_pooling="last"``).

    ``path`` is the weights file, looked up like the encoder's (:func:`find_clap_weights`), with
    the encoder's one-line errors. ``meta`` holds the file's path and msclap's ``logit_scale``.
    The space is rebuilt from the weights, never saved (it has no head specs).
    """
    found = find_clap_weights(path)
    parts = convert_msclap_state_dict(load_clap_weights(found))
    audio_head = load_module(ClapProjection, parts.audio_projection, "audio projection", found)
    text_head = load_module(ClapProjection, parts.text_projection, "text projection", found)
    meta = {"weights": str(found)}
    if parts.logit_scale is not None:
        meta["logit_scale"] = float(parts.logit_scale)
    return JointSpace("clap", audio_head, text_head, "last", meta=meta).eval()
