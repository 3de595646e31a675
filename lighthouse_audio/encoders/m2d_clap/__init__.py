"""The ``m2d-clap`` feature: M2D-CLAP 2025 (nttcslab/m2d release v0.5.0), without the M2D code.

What the public M2D-CLAP audio-moment-retrieval systems feed QD-DETR, recomputed in plain torch
(and ``transformers.BertModel``) from the README of the parity fixture alone:

* **audio** ``(num_windows, 768)``: the joint-space audio embedding (``encode_clap_audio``) of
  each non-overlapping 1 s window at 16 kHz, a trailing partial second dropped (``frames="none"``).
  Front end :mod:`.frontend` (log-mel), encoder :mod:`.vit` (ViT-B in 10.01 s units),
  projection :mod:`.projector` (semantic token); :mod:`.audio` strings them together and also
  gives the per-frame encoder outputs (~6.25 frames/s) of whole recordings.
* **text** ``(num_tokens <= 32, 768)``: the checkpoint's fine-tuned BERT, last hidden states of
  the query truncated to 32 tokens, [CLS] and [SEP] included (:mod:`.text`).
* **joint space**: the stored audio rows as they are and the query's [CLS] state
  (:mod:`.joint_space`), so zero-shot methods need no ``lighthouse align``.

The configuration is the checkpoint's folder name (:mod:`.config`). The checkpoint is found by
:func:`find_m2d_clap_weights` (``--weights``, ``$LIGHTHOUSE_AUDIO_M2D_CLAP_WEIGHTS``, the cache,
else the release zip downloaded and unpacked on first use) and read with the allow-listed
unpickler; BERT's ``vocab.txt`` comes from ``--option tokenizer=DIR``,
``$LIGHTHOUSE_AUDIO_BERT_TOKENIZER`` or the hub's ``google-bert/bert-base-uncased``
(:func:`find_bert_vocab`): the reference loads the tokenizer from that hub id, not from the
release zip. Importing this package registers the feature; nothing heavy is imported
until an encoder is built.
"""

from __future__ import annotations

from lighthouse_audio.encoders.base import FeatureSpec
from lighthouse_audio.encoders.m2d_clap.audio import M2DClapAudio
from lighthouse_audio.encoders.m2d_clap.config import (
    CHECKPOINT_FILE,
    MODEL_NAME,
    M2DConfig,
    parse_model_name,
)
from lighthouse_audio.encoders.m2d_clap.encoder import M2DClapEncoder, build_m2d_clap_encoder
from lighthouse_audio.encoders.m2d_clap.frontend import SAMPLE_RATE, M2DLogMel
from lighthouse_audio.encoders.m2d_clap.joint_space import build_m2d_clap_joint_space
from lighthouse_audio.encoders.m2d_clap.projector import SemanticProjector
from lighthouse_audio.encoders.m2d_clap.vit import M2DViT
from lighthouse_audio.encoders.m2d_clap.weights import (
    RELEASE_URL,
    TOKENIZER_ENV,
    VOCAB_NAME,
    WEIGHTS_ENV,
    WEIGHTS_NAME,
    find_bert_vocab,
    find_m2d_clap_weights,
)
from lighthouse_audio.registry import FEATURES

__all__ = [
    "CHECKPOINT_FILE", "FEATURE", "MODEL_NAME", "RELEASE_URL", "SAMPLE_RATE", "TOKENIZER_ENV",
    "VOCAB_NAME", "WEIGHTS_ENV", "WEIGHTS_NAME", "M2DClapAudio", "M2DClapEncoder", "M2DConfig",
    "M2DLogMel", "M2DViT", "SemanticProjector", "build_m2d_clap_encoder",
    "build_m2d_clap_joint_space", "find_bert_vocab", "find_m2d_clap_weights", "parse_model_name",
]  # fmt: skip

FEATURE = FEATURES.register(
    FeatureSpec(
        name="m2d-clap",
        domain="audio",
        description="M2D-CLAP 2025: joint-space audio per 1 s window (16 kHz), BERT token "
        "states (32 tokens); its own joint space",
        encoder=build_m2d_clap_encoder,
        joint_space=build_m2d_clap_joint_space,
    )
)
