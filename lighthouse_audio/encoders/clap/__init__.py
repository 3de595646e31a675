"""The ``clap`` feature: MS-CLAP 2023 (``msclap``'s ``CLAP_weights_2023.pth``), without msclap.

The ``clap`` features Lighthouse trains on, recomputed without msclap:

* **audio** ``(num_windows, 768)``: HTSAT's pooled embedding *before* the projection
  (``audio_encoder.base(x)['embedding']``) of each 1 s window at 44.1 kHz. The HTSAT trunk is
  ``transformers.ClapAudioModel`` with msclap's weights renamed (fused ``qkv`` split into
  query/key/value); the log-mel front end is :mod:`lighthouse_audio.encoders.clap.frontend`.
  The default frame convention is ``"center"``: the released offline features (the AMR
  paper's feature extractor) zero-pad half a window on each side before cutting, giving N+1
  frames for N seconds. Lighthouse's online API cuts ``wav.unfold(0, sr, sr)`` instead
  (``frames="none"``: N frames, a trailing partial second dropped); pass ``--frames none``.
* **text** ``(num_tokens, 768)``: GPT-2's last hidden states for msclap's tokenisation, one row per
  token with ``attention_mask == 1`` (the text, ``" "`` and ``<|endoftext|>``; padding dropped).
* **pooled** (``encode_*_pooled``, 1024-d joint space): msclap's projection heads. Text is pooled
  at msclap's index ``(input_ids != 0).sum(-1) - 1``, quirk included (see :meth:`tokenize`).

Weights are looked up in the given path, the environment and the cache, and downloaded from the
hub on first use unless offline (:func:`find_clap_weights`); so is the GPT-2 tokenizer
(:func:`find_gpt2_tokenizer`). ``transformers`` is imported only when an encoder is built.

Modules: ``weights`` (find, read and map the weights file), ``frontend`` (log-mel),
``networks`` (HTSAT, GPT-2 config, projections), ``tokenizer``, ``encoder``
(:class:`MSClap2023Encoder`, :func:`build_clap_encoder`), ``joint_space`` (the projections as a
joint space). Importing this package registers the feature; torch models are built only when an
encoder or joint space is asked for.
"""

from __future__ import annotations

from lighthouse_audio.encoders.base import FeatureSpec
from lighthouse_audio.encoders.clap.encoder import MSClap2023Encoder, build_clap_encoder
from lighthouse_audio.encoders.clap.frontend import SAMPLE_RATE, ClapLogMel
from lighthouse_audio.encoders.clap.joint_space import build_clap_joint_space
from lighthouse_audio.encoders.clap.networks import (
    HTSAT_CONFIG,
    JOINT_DIM,
    ClapAudioBranch,
    ClapProjection,
    build_htsat,
    gpt2_config_for,
)
from lighthouse_audio.encoders.clap.tokenizer import load_gpt2_tokenizer, msclap_tokenize
from lighthouse_audio.encoders.clap.weights import (
    HF_FILENAME,
    HF_REPO,
    TOKENIZER_ENV,
    WEIGHTS_ENV,
    WEIGHTS_NAME,
    ClapStateDicts,
    check_state_dict,
    convert_msclap_state_dict,
    find_clap_weights,
    find_gpt2_tokenizer,
    htsat_key_to_transformers,
    load_clap_weights,
    load_module,
)
from lighthouse_audio.registry import FEATURES

__all__ = [
    "FEATURE", "HF_FILENAME", "HF_REPO", "HTSAT_CONFIG", "JOINT_DIM", "SAMPLE_RATE",
    "TOKENIZER_ENV", "WEIGHTS_ENV", "WEIGHTS_NAME", "ClapAudioBranch", "ClapLogMel",
    "ClapProjection", "ClapStateDicts", "MSClap2023Encoder", "build_clap_encoder",
    "build_clap_joint_space", "build_htsat", "check_state_dict", "convert_msclap_state_dict",
    "find_clap_weights", "find_gpt2_tokenizer", "gpt2_config_for", "htsat_key_to_transformers",
    "load_clap_weights", "load_gpt2_tokenizer", "load_module", "msclap_tokenize",
]  # fmt: skip

FEATURE = FEATURES.register(
    FeatureSpec(
        name="clap",
        domain="audio",
        description="MS-CLAP 2023: HTSAT pre-projection audio (1 s windows), GPT-2 token states",
        encoder=build_clap_encoder,
        joint_space=build_clap_joint_space,
    )
)
