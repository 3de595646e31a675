"""M2D-CLAP's checkpoint: where it is found, how it is read safely, where each tensor goes.

``find_m2d_clap_weights`` looks in the given path, ``$LIGHTHOUSE_AUDIO_M2D_CLAP_WEIGHTS`` and the
cache, and downloads the ``m2d-clap-2025`` release zip on first use unless offline (the hub
unpacks its one ``.pth`` into ``<cache>/hub/files/<model name>/``, keeping the folder name that
is the model's configuration). ``read_checkpoint`` unpickles with the project's allow-list
(``engine/safe_unpickler``; the file's ``args`` entry is an ``argparse.Namespace``), so a
checkpoint cannot run code. ``split_state_dict`` routes the tensors as the reference does:
``backbone.*`` to the ViT and its ``audio_proj.*`` to the projector,
``text_encoder.text_encoder.*`` to BERT.
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

from lighthouse_audio.encoders.m2d_clap.config import (
    CHECKPOINT_FILE,
    MODEL_NAME,
    M2DConfig,
    parse_model_name,
)
from lighthouse_audio.encoders.m2d_clap.frontend import NUM_MELS, SAMPLE_RATE
from lighthouse_audio.encoders.m2d_clap.projector import SemanticProjector
from lighthouse_audio.encoders.m2d_clap.vit import M2DViT

__all__ = [
    "RELEASE_URL", "TOKENIZER_ENV", "VOCAB_NAME", "WEIGHTS_ENV", "WEIGHTS_NAME", "M2DClapState",
    "build_projector", "build_vit", "find_bert_vocab", "find_m2d_clap_weights", "load_module",
    "model_config", "read_checkpoint", "split_state_dict",
]  # fmt: skip

WEIGHTS_ENV = "LIGHTHOUSE_AUDIO_M2D_CLAP_WEIGHTS"
TOKENIZER_ENV = "LIGHTHOUSE_AUDIO_BERT_TOKENIZER"
WEIGHTS_NAME = "m2d-clap-2025"  # lighthouse_audio.hub catalog entries
VOCAB_NAME = "bert-base-uncased-vocab"
RELEASE_URL = f"https://github.com/nttcslab/m2d/releases/download/v0.5.0/{MODEL_NAME}.zip"

WEIGHTS_HINT = (
    f"download {RELEASE_URL}, unzip it keeping the folder {MODEL_NAME} (its name is the "
    f"configuration) and pass --weights .../{MODEL_NAME}/{CHECKPOINT_FILE} or set {WEIGHTS_ENV}"
)
TOKENIZER_HINT = (
    "put BERT's vocab.txt (https://huggingface.co/google-bert/bert-base-uncased) in a folder and "
    f"pass --option tokenizer=DIR or set {TOKENIZER_ENV}"
)

BACKBONE_PREFIX = "backbone."
EVAR_PREFIX = "module.ar.runtime.backbone."  # files fine-tuned with EVAR; stripped as upstream
PROJECTOR_PREFIX = "audio_proj."
TEXT_PREFIX = "text_encoder.text_encoder."
DEFAULT_NORM_STATS = (-7.1, 4.2)  # what the reference uses for files without norm_stats
HEAD_DIM = 64  # every ViT/BERT size M2D uses has 64-wide heads (base: 768 / 12)
_BLOCK = re.compile(r"^blocks\.(\d+)\.")
_SEM_BLOCK = re.compile(r"^sem_blocks\.(\d+)\.")


def find_m2d_clap_weights(path: str | os.PathLike | None = None) -> Path:
    """The checkpoint: ``path`` (a file, ``hf://...`` or the name ``m2d-clap-2025``), else
    ``$LIGHTHOUSE_AUDIO_M2D_CLAP_WEIGHTS``, else the named release file: the cache, or a
    download (offline: a one-line refusal saying where to put the file)."""
    from lighthouse_audio.hub import fetch, resolve_file

    for given, origin in ((path, "given path"), (os.environ.get(WEIGHTS_ENV), WEIGHTS_ENV)):
        if given:
            found = Path(given).expanduser()
            if found.is_dir() and (found / CHECKPOINT_FILE).is_file():
                return found / CHECKPOINT_FILE  # the unzipped release folder
            try:
                return resolve_file(given, "weights")
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"M2D-CLAP weights not found at {found} ({origin}): {WEIGHTS_HINT}"
                ) from None
    return fetch(WEIGHTS_NAME)


def find_bert_vocab(path: str | os.PathLike | None = None) -> Path:
    """BERT's WordPiece ``vocab.txt``: ``path`` (the file or its folder), else
    ``$LIGHTHOUSE_AUDIO_BERT_TOKENIZER``, else the named hub file ``bert-base-uncased-vocab``
    (``google-bert/bert-base-uncased``, what the reference loads; cache or download)."""
    from lighthouse_audio.hub import fetch

    for given, origin in ((path, "given path"), (os.environ.get(TOKENIZER_ENV), TOKENIZER_ENV)):
        if given:
            found = Path(given).expanduser()
            vocab = found / "vocab.txt" if found.is_dir() else found
            if not vocab.is_file():
                raise FileNotFoundError(
                    f"BERT vocabulary not found at {vocab} ({origin}): {TOKENIZER_HINT}"
                )
            return vocab
    return fetch(VOCAB_NAME)


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The checkpoint's ``'model'`` state dict, memory-mapped, unpickled with the allow-list.

    Every problem is a one-line ``ValueError`` naming the file: unreadable, unsafe (it asks for
    code outside the allow-list, refused before anything runs) or without a state dict.
    """
    from lighthouse_audio.engine import safe_unpickler

    path = Path(path)
    try:
        # weights_only must be off for torch to take a pickle_module; the allow-list is what
        # keeps the load from running code.
        checkpoint = torch.load(
            path, map_location="cpu", pickle_module=safe_unpickler, weights_only=False, mmap=True
        )
    except safe_unpickler.UnsafeCheckpointError as err:
        raise ValueError(f"{path}: unsafe checkpoint: {err}") from None
    except Exception as err:  # noqa: BLE001 - zipfile, pickle or torch: the same to the user
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(
            f"{path} is not a readable M2D-CLAP checkpoint ({type(err).__name__}: {first_line}); "
            f"{WEIGHTS_HINT}"
        ) from None
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        # Name what was found without printing it: a stray file may be huge.
        got = (
            sorted(map(str, checkpoint))[:5]
            if isinstance(checkpoint, dict)
            else type(checkpoint).__name__
        )
        raise ValueError(
            f"{path} is not an M2D-CLAP checkpoint: expected a dict with a 'model' state dict, "
            f"got {got}"
        )
    return state


@dataclass
class M2DClapState:
    """A checkpoint's tensors per destination module, in that module's key names."""

    vit: dict[str, torch.Tensor] = field(default_factory=dict)  # M2DViT
    projector: dict[str, torch.Tensor] = field(default_factory=dict)  # SemanticProjector
    text: dict[str, torch.Tensor] = field(default_factory=dict)  # transformers BertModel
    ignored: list[str] = field(default_factory=list)


def split_state_dict(state: dict[str, torch.Tensor]) -> M2DClapState:
    """Route tensors as the reference loader does: with any ``backbone.*`` key only those count
    for audio (prefix stripped), else every key (``module.ar.runtime.backbone.`` stripped);
    ``audio_proj.*`` goes to the projector; BERT's keys are ``text_encoder.text_encoder.*``."""
    out = M2DClapState()
    has_backbone = any(key.startswith(BACKBONE_PREFIX) for key in state)
    for key, tensor in state.items():
        if key.startswith(TEXT_PREFIX):
            out.text[key[len(TEXT_PREFIX) :]] = tensor
            continue
        if has_backbone:
            if not key.startswith(BACKBONE_PREFIX):
                out.ignored.append(key)
                continue
            key = key[len(BACKBONE_PREFIX) :]
        key = key.removeprefix(EVAR_PREFIX)
        if key.startswith(PROJECTOR_PREFIX):
            out.projector[key[len(PROJECTOR_PREFIX) :]] = tensor
        else:
            out.vit[key] = tensor
    return out


def model_config(path: Path, model_name: str | None = None) -> M2DConfig:
    """The configuration of the checkpoint at ``path``: ``model_name`` when given, else its
    parent folder's name (as the reference loader reads it). One-line errors name the file."""
    name = model_name or path.parent.name
    try:
        config = parse_model_name(name)
    except ValueError as err:
        how = "model_name" if model_name else "its folder name"
        raise ValueError(
            f"{path}: cannot read the M2D configuration from {how} ({err}); keep the released "
            f"folder name or pass --option model_name={MODEL_NAME}"
        ) from None
    if config.sample_rate != SAMPLE_RATE or config.num_mels != NUM_MELS:
        raise ValueError(
            f"{path}: '{name}' is a {config.sample_rate // 1000} kHz, {config.num_mels}-mel model; "
            f"only the 16 kHz, 80-mel front end is implemented"
        )
    return config


def build_vit(state: dict[str, torch.Tensor], config: M2DConfig, source: Any) -> M2DViT:
    """The ViT the tensors describe (width, depth and MLP from their shapes, 64-wide heads),
    checked against the folder name's input unit and patch size, weights loaded."""
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight"):
        if key not in state:
            raise ValueError(
                f"{source} is not an M2D checkpoint: no '{BACKBONE_PREFIX}{key}' tensor "
                f"(first keys: {list(state)[:3]})"
            )
    dim = state["cls_token"].shape[-1]
    depth = 1 + max(int(m.group(1)) for key in state if (m := _BLOCK.match(key)))
    patch = tuple(state["patch_embed.proj.weight"].shape[2:])
    if patch != config.patch_size:
        raise ValueError(
            f"{source}: the patch embedding is {patch[0]}x{patch[1]}, the configuration "
            f"{config.model} says {config.patch_size[0]}x{config.patch_size[1]}"
        )
    state = dict(state)
    if "norm_stats" not in state:
        state["norm_stats"] = torch.tensor(DEFAULT_NORM_STATS)

    def build() -> M2DViT:
        return M2DViT(
            dim, depth, max(1, dim // HEAD_DIM), state["blocks.0.mlp.fc1.weight"].shape[0],
            config.num_mels, config.unit_frames, config.patch_size,
        )  # fmt: skip

    return load_module(build, state, "ViT", source)


def build_projector(
    state: dict[str, torch.Tensor], dim: int, source: Any
) -> SemanticProjector | None:
    """The semantic-token projector (M2D-CLAP 2025), or None when the file has none."""
    if "sem_token" not in state:
        return None
    blocks = [int(m.group(1)) for key in state if (m := _SEM_BLOCK.match(key))]
    sem_mode = 1 + max(blocks, default=-1)  # the reference's rule: highest block index + 1
    return load_module(
        lambda: SemanticProjector.for_mode(dim, sem_mode), state, "projector", source
    )


def load_module(
    build: Callable[[], nn.Module], state: dict[str, torch.Tensor], what: str, source: Any
) -> nn.Module:
    """Build ``build()`` without initialising it (meta device), check that ``state`` has each of
    its tensors with the same shape (extra keys are ignored, as the reference drops them), then
    adopt the tensors (no copy of a memory-mapped file). Eval mode, no gradients."""
    with torch.device("meta"):
        module = build()
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(
            f"{source} is not an M2D-CLAP checkpoint: {len(missing)} {what} tensors missing "
            f"(e.g. {missing[0]})"
        )
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ValueError(
                f"{source}: {what} tensor {key} has shape {tuple(state[key].shape)}, expected "
                f"{tuple(ref.shape)} for this configuration"
            )
    chosen = {key: state[key].to(ref.dtype) for key, ref in expected.items()}
    module.load_state_dict(chosen, strict=True, assign=True)
    _restore_meta_buffers(module)
    if any(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
        module = build()  # an unknown non-persistent buffer: a real (initialised) build
        module.load_state_dict(chosen, strict=True)
    return module.eval().requires_grad_(False)


def _restore_meta_buffers(module: nn.Module) -> None:
    """Non-persistent buffers are not in a state dict, so they stay on the meta device; BERT's
    ``position_ids`` and ``token_type_ids`` are rebuilt here."""
    for name, buffer in list(module.named_buffers()):
        if not buffer.is_meta:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        if attr == "position_ids":
            owner.register_buffer(attr, torch.arange(buffer.shape[-1]).expand(buffer.shape), False)
        elif attr == "token_type_ids":
            owner.register_buffer(attr, torch.zeros(buffer.shape, dtype=buffer.dtype), False)
