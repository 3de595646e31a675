"""Token states and mean-pooled sentence vectors from a Hugging Face text encoder.

Shared by the encoders with a ``transformers`` text tower (``aisfx-minilm``, ``laion-clap``,
``hf``). Token states keep every token whose attention mask is 1, so BERT-style
tokenizers contribute ``[CLS]`` and ``[SEP]`` (RoBERTa: ``<s>`` and ``</s>``) as Lighthouse's
stored text features do; padding is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


@torch.no_grad()
def text_token_states(
    model: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    max_length: int,
    device: torch.device,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Run ``model`` on ``texts`` in one padded batch.

    Returns ``(tokens, pooled)``: one float32 ``(num_tokens, hidden)`` array of last hidden states
    per text (tokens with attention mask 1, special tokens included) and float32
    ``(num_texts, hidden)`` mean-pooled, L2-normalised sentence vectors (sentence-transformers'
    Pooling(mean) + Normalize).
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    if len(texts) == 0:
        hidden = int(model.config.hidden_size)
        return [], np.zeros((0, hidden), dtype=np.float32)
    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    batch = {k: v.to(device) for k, v in batch.items()}
    states = model(**batch).last_hidden_state.float()  # (num_texts, max_tokens, hidden)
    mask = batch["attention_mask"].bool()
    tokens = [states[i, mask[i]].cpu().numpy() for i in range(len(texts))]
    weights = mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return tokens, pooled.cpu().numpy().astype(np.float32)
