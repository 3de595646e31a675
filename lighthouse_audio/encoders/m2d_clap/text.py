"""M2D-CLAP 2025's text side: the fine-tuned BERT-base stored in the checkpoint, and its tokenizer.

BERT is ``transformers.BertModel`` with a configuration read off the stored tensors' shapes
(bert-base-uncased: 12 layers, 768 wide, 64-wide heads, FFN 3072, 512 positions, LayerNorm eps
1e-12, erf-GELU), so no hub config is needed. Only ``input_ids`` and ``attention_mask`` are
passed (token types 0); the pooler is stored but unused.

Two outputs, as the reference uses them:

* token states (the AMR systems' text feature): each query tokenised alone with truncation to
  32 tokens, [CLS] and [SEP] included, ``last_hidden_state`` of its tokens, ``(L <= 32, 768)``;
* the joint-space text embedding (``encode_clap_text``): [CLS]'s last hidden state, ``(768,)``,
  of the untruncated text (at most 512 tokens); no projection.

Batching pads with [PAD] under the attention mask, which moves the states of the real tokens
only at rounding level (~3e-6).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lighthouse_audio.encoders.m2d_clap.weights import HEAD_DIM, load_module

__all__ = [
    "AMR_MAX_TOKENS", "BERT_MAX_TOKENS", "bert_config_for", "build_bert", "cls_embeddings",
    "load_bert_tokenizer", "tokenize", "token_states",
]  # fmt: skip

AMR_MAX_TOKENS = 32  # the AMR systems' max_length, [CLS] and [SEP] included
BERT_MAX_TOKENS = 512
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")


def bert_config_for(state: dict[str, torch.Tensor]) -> Any:
    """``BertConfig`` matching the stored tensors (bert-base-uncased for the 2025 file)."""
    from transformers import BertConfig

    words = state["embeddings.word_embeddings.weight"]
    return BertConfig(
        vocab_size=words.shape[0],
        hidden_size=words.shape[1],
        num_hidden_layers=1 + max(int(m.group(1)) for k in state if (m := _LAYER.match(k))),
        num_attention_heads=max(1, words.shape[1] // HEAD_DIM),
        intermediate_size=state["encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["embeddings.token_type_embeddings.weight"].shape[0],
        layer_norm_eps=1e-12,
        hidden_act="gelu",
    )


def build_bert(state: dict[str, torch.Tensor], source: Any) -> Any:
    """The checkpoint's BERT (``BertModel`` with pooler), weights loaded, eval mode."""
    from transformers import BertModel

    for key in ("embeddings.word_embeddings.weight", "encoder.layer.0.intermediate.dense.weight"):
        if key not in state:
            raise ValueError(
                f"{source} holds no BERT text encoder (no 'text_encoder.text_encoder.{key}'): "
                "M2D-CLAP 2025 (folder name ...pBpTI...) carries one"
            )
    config = bert_config_for(state)
    return load_module(lambda: BertModel(config, add_pooling_layer=True), state, "BERT", source)


def load_bert_tokenizer(vocab: Path) -> Any:
    """bert-base-uncased's WordPiece tokenizer from ``vocab.txt``: lower-case, accents
    stripped, ``[CLS]`` 101 ... ``[SEP]`` 102, ``[PAD]`` 0, 512 positions."""
    from transformers import BertTokenizer

    try:
        tokenizer = BertTokenizer(vocab=str(vocab), do_lower_case=True, model_max_length=512)
    except Exception as err:  # noqa: BLE001 - any unreadable vocabulary: one line
        raise ValueError(f"{vocab}: not a BERT vocabulary ({type(err).__name__}: {err})") from None
    if tokenizer.cls_token_id is None or tokenizer.convert_tokens_to_ids("[CLS]") == (
        tokenizer.unk_token_id
    ):
        raise ValueError(f"{vocab}: not a BERT vocabulary (no [CLS] entry)")
    return tokenizer


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_tokens: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` int64 ``(num_texts, longest)``, right-padded.

    ``max_tokens``: truncate each text to that many tokens ([CLS]/[SEP] included); None: no
    truncation, and a text longer than BERT's 512 positions is a one-line error.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    if not texts:
        return torch.zeros((0, 2), dtype=torch.int64), torch.zeros((0, 2), dtype=torch.int64)
    truncate = max_tokens is not None
    encoded = tokenizer(
        list(texts), padding="longest", truncation=truncate,
        max_length=max_tokens if truncate else None, return_tensors="pt",
    )  # fmt: skip
    input_ids, mask = encoded["input_ids"], encoded["attention_mask"]
    if input_ids.shape[1] > BERT_MAX_TOKENS:
        longest = int(mask.sum(-1).argmax())
        raise ValueError(
            f"text {longest} has {input_ids.shape[1]} tokens; BERT takes at most {BERT_MAX_TOKENS}"
        )
    return input_ids.long(), mask.long()


@torch.inference_mode()
def _hidden_states(
    bert: Any, input_ids: torch.Tensor, mask: torch.Tensor, batch_size: int, device: torch.device
) -> torch.Tensor:
    """``last_hidden_state`` ``(num_texts, length, D)`` on CPU, in batches."""
    states = [torch.zeros((0, input_ids.shape[1], bert.config.hidden_size))]
    for start in range(0, input_ids.shape[0], batch_size):
        ids = input_ids[start : start + batch_size].to(device)
        attention = mask[start : start + batch_size].to(device)
        out = bert(input_ids=ids, attention_mask=attention).last_hidden_state
        states.append(out.float().cpu())
    return torch.cat(states)


def token_states(
    bert: Any,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    max_tokens: int = AMR_MAX_TOKENS,
) -> list[np.ndarray]:
    """One float32 ``(num_tokens, D)`` per text: BERT's last hidden states of its tokens
    (``[CLS] ... [SEP]``, at most ``max_tokens``), padding dropped."""
    input_ids, mask = tokenize(tokenizer, texts, max_tokens)
    hidden = _hidden_states(bert, input_ids, mask, batch_size, torch.device(device))
    return [states[row.bool()].numpy() for states, row in zip(hidden, mask, strict=True)]


def cls_embeddings(
    bert: Any,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """``(num_texts, D)`` float32: [CLS]'s last hidden state of each untruncated text, the
    joint-space text embedding (``encode_clap_text``; cosine similarity with audio)."""
    input_ids, mask = tokenize(tokenizer, texts, None)
    hidden = _hidden_states(bert, input_ids, mask, batch_size, torch.device(device))
    return hidden[:, 0].numpy()
