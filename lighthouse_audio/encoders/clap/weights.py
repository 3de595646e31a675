"""MS-CLAP 2023's weights file: where it is found, how it is read, where each tensor goes.

``find_clap_weights`` looks in the given path, ``$LIGHTHOUSE_AUDIO_CLAP_WEIGHTS`` and the cache,
and downloads the ``msclap-2023`` file from the hub on first use unless offline;
``convert_msclap_state_dict`` routes msclap's flat state dict to transformers' ``ClapAudioModel``,
``GPT2Model`` and the two projections (fused ``qkv`` split, legacy buffers dropped).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS_ENV = "LIGHTHOUSE_AUDIO_CLAP_WEIGHTS"
TOKENIZER_ENV = "LIGHTHOUSE_AUDIO_GPT2_TOKENIZER"
HF_REPO = "microsoft/msclap"
HF_FILENAME = "CLAP_weights_2023.pth"
WEIGHTS_NAME = "msclap-2023"  # its lighthouse_audio.hub catalog entry

WEIGHTS_HINT = (
    f"download {HF_FILENAME} from https://huggingface.co/{HF_REPO} "
    f"and pass --weights PATH or set {WEIGHTS_ENV}"
)
TOKENIZER_HINT = (
    "put GPT-2's vocab.json and merges.txt (https://huggingface.co/openai-community/gpt2) "
    f"in a folder and pass --tokenizer DIR or set {TOKENIZER_ENV}"
)


AUDIO_PREFIX = "audio_encoder.base.htsat."
TEXT_PREFIX = "caption_encoder.base."
AUDIO_PROJECTION_PREFIX = "audio_encoder.projection."
TEXT_PROJECTION_PREFIX = "caption_encoder.projection."

# Persistent causal-mask buffers that older transformers saved with GPT-2 (msclap loads with
# strict=False to skip them). Anchored: a loose ``attn\.bias$`` would also drop
# ``attn.c_attn.bias``.
LEGACY_GPT2_BUFFER = re.compile(r"^caption_encoder\.base\.h\.\d+\.attn\.(masked_)?bias$")
# HTSAT tensors transformers' ClapAudioModel has no place for: the front end (ours), the shift
# masks (recomputed at run time) and the AudioSet classifier (not part of the embedding).
DROPPED_HTSAT = re.compile(
    r"^(spectrogram_extractor\.|logmel_extractor\.|tscam_conv\.|head\.)|\.attn_mask$"
)
HTSAT_RENAMES = (
    (re.compile(r"^bn0\."), "batch_norm."),
    (re.compile(r"\.norm1\."), ".layernorm_before."),
    (re.compile(r"\.norm2\."), ".layernorm_after."),
    (re.compile(r"\.attn\.relative_position_"), ".attention.self.relative_position_"),
    (re.compile(r"\.attn\.proj\."), ".attention.output.dense."),
    (re.compile(r"\.mlp\.fc1\."), ".intermediate.dense."),
    (re.compile(r"\.mlp\.fc2\."), ".output.dense."),
)
QKV = re.compile(r"^(?P<block>.+)\.attn\.qkv\.(?P<param>weight|bias)$")


def find_clap_weights(path: str | os.PathLike | None = None) -> Path:
    """The weights file: ``path`` (a file, ``hf://...`` or ``msclap-2023``), else
    ``$LIGHTHOUSE_AUDIO_CLAP_WEIGHTS``, else the named file ``msclap-2023``: the cache, or a
    download from the hub repo ``microsoft/msclap`` (offline: a one-line refusal saying where to
    put the file)."""
    from lighthouse_audio.hub import fetch, resolve_file

    for given, origin in ((path, "given path"), (os.environ.get(WEIGHTS_ENV), WEIGHTS_ENV)):
        if given:
            try:
                return resolve_file(given, "weights")
            except FileNotFoundError:
                found = Path(given).expanduser()
                raise FileNotFoundError(
                    f"MS-CLAP 2023 weights not found at {found} ({origin}): {WEIGHTS_HINT}"
                ) from None
    return fetch(WEIGHTS_NAME)


def find_gpt2_tokenizer(path: str | os.PathLike | None = None) -> Path:
    """A folder holding GPT-2's ``vocab.json`` and ``merges.txt``: ``path``, else
    ``$LIGHTHOUSE_AUDIO_GPT2_TOKENIZER``, else the named files ``gpt2-vocab`` and
    ``gpt2-merges`` (cache or hub download, as for the weights)."""
    from lighthouse_audio.hub import fetch

    files = ("vocab.json", "merges.txt")
    for given, origin in ((path, "given path"), (os.environ.get(TOKENIZER_ENV), TOKENIZER_ENV)):
        if given:
            folder = Path(given).expanduser()
            missing = [name for name in files if not (folder / name).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"GPT-2 tokenizer not found in {folder} ({origin}; missing "
                    f"{', '.join(missing)}): {TOKENIZER_HINT}"
                )
            return folder
    vocab, merges = fetch("gpt2-vocab"), fetch("gpt2-merges")
    if vocab.parent != merges.parent:
        raise FileNotFoundError(
            f"GPT-2 tokenizer files are in two folders ({vocab.parent}, {merges.parent}): "
            f"{TOKENIZER_HINT}"
        )
    return vocab.parent


def load_clap_weights(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """msclap's flat state dict (the file's ``'model'`` entry), located by
    :func:`find_clap_weights` and memory-mapped where the file format allows."""
    found = find_clap_weights(path)
    try:
        try:
            checkpoint = torch.load(found, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            checkpoint = torch.load(found, map_location="cpu", weights_only=True)
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(
            f"{found} is not a readable MS-CLAP 2023 checkpoint ({type(err).__name__}: "
            f"{first_line}); {WEIGHTS_HINT}"
        ) from None
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        got = (
            f"a dict with keys {sorted(map(str, checkpoint))[:5]}"
            if isinstance(checkpoint, dict)
            else type(checkpoint).__name__
        )
        raise ValueError(
            f"{found} is not an MS-CLAP 2023 checkpoint: expected a dict with a 'model' "
            f"state dict, got {got}; {WEIGHTS_HINT}"
        )
    if not any(isinstance(k, str) and k.startswith(AUDIO_PREFIX) for k in state):
        raise ValueError(
            f"{found} is not an MS-CLAP 2023 checkpoint: its 'model' has no "
            f"'{AUDIO_PREFIX}*' tensors (first keys: {list(state)[:3]}); {WEIGHTS_HINT}"
        )
    return state


@dataclass
class ClapStateDicts:
    """msclap's state dict split per module, in the target modules' key names."""

    audio: dict[str, torch.Tensor] = field(default_factory=dict)  # ClapAudioModel
    audio_projection: dict[str, torch.Tensor] = field(default_factory=dict)  # ClapProjection
    text: dict[str, torch.Tensor] = field(default_factory=dict)  # GPT2Model
    text_projection: dict[str, torch.Tensor] = field(default_factory=dict)  # ClapProjection
    mel_filterbank: torch.Tensor | None = None  # logmel_extractor.melW (513, 64), if stored
    logit_scale: torch.Tensor | None = None
    ignored: list[str] = field(default_factory=list)  # keys with no destination


def htsat_key_to_transformers(key: str) -> str:
    """One HTSAT key (without ``audio_encoder.base.htsat.``, not ``qkv``) -> ClapAudioModel."""
    for pattern, replacement in HTSAT_RENAMES:
        key = pattern.sub(replacement, key)
    return "audio_encoder." + key


def convert_msclap_state_dict(state: dict[str, torch.Tensor]) -> ClapStateDicts:
    """Route msclap's tensors to ClapAudioModel / GPT2Model / the two projections.

    Dropped: GPT-2's legacy ``attn.bias``/``attn.masked_bias`` buffers (anchored regex),
    HTSAT's ``attn_mask``, ``tscam_conv``, ``head`` and STFT kernels; ``melW`` is kept aside for
    the front end. Each fused ``attn.qkv`` (3C x C, 3C) is split in q, k, v order.
    """
    out = ClapStateDicts()
    for key, tensor in state.items():
        if key == "logit_scale":
            out.logit_scale = tensor
        elif LEGACY_GPT2_BUFFER.match(key):
            out.ignored.append(key)
        elif key.startswith(AUDIO_PREFIX):
            rest = key[len(AUDIO_PREFIX) :]
            if rest == "logmel_extractor.melW":
                out.mel_filterbank = tensor
            if DROPPED_HTSAT.search(rest):
                out.ignored.append(key)
            elif match := QKV.match(rest):
                block = htsat_key_to_transformers(match["block"])
                for name, part in zip(
                    ("query", "key", "value"), tensor.chunk(3, dim=0), strict=True
                ):
                    out.audio[f"{block}.attention.self.{name}.{match['param']}"] = part
            else:
                out.audio[htsat_key_to_transformers(rest)] = tensor
        elif key.startswith(TEXT_PREFIX):
            out.text[key[len(TEXT_PREFIX) :]] = tensor
        elif key.startswith(AUDIO_PROJECTION_PREFIX):
            out.audio_projection[key[len(AUDIO_PROJECTION_PREFIX) :]] = tensor
        elif key.startswith(TEXT_PROJECTION_PREFIX):
            out.text_projection[key[len(TEXT_PROJECTION_PREFIX) :]] = tensor
        else:
            out.ignored.append(key)
    # Only counts training steps; absent from some exports, meaningless in eval mode.
    out.audio.setdefault("audio_encoder.batch_norm.num_batches_tracked", torch.tensor(0))
    return out


def check_state_dict(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], what: str, source: Any
) -> None:
    """Raise one-line ``ValueError`` unless ``state`` has every key of ``expected`` (a module's
    state dict, meta tensors are fine) with the same shape. Extra keys are allowed."""
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(
            f"{source} is not an MS-CLAP 2023 checkpoint: {len(missing)} {what} tensors missing "
            f"(e.g. {missing[0]}); {WEIGHTS_HINT}"
        )
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ValueError(
                f"{source} is not an MS-CLAP 2023 checkpoint: {what} tensor {key} has shape "
                f"{tuple(state[key].shape)}, expected {tuple(ref.shape)}"
            )


def load_module(
    build: Callable[[], nn.Module], state: dict[str, torch.Tensor], what: str, source: Any
) -> nn.Module:
    """Build a module without initialising it (meta device), check ``state`` against it, then
    adopt the tensors (no copy of a memory-mapped file). Eval mode, no gradients."""
    with torch.device("meta"):
        module = build()
    expected = module.state_dict()
    check_state_dict(expected, state, what, source)
    state = {key: state[key].to(ref.dtype) for key, ref in expected.items()}
    module.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
        module = build()  # a non-persistent buffer (older transformers) needs a real build
        module.load_state_dict(state, strict=True)
    return module.eval().requires_grad_(False)
