"""GPT-2's tokenizer as msclap uses it (its pad token and EOT suffix, quirks kept)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from lighthouse_audio.encoders.clap.weights import find_gpt2_tokenizer

TEXT_LENGTH = 77
EOT_SUFFIX = " <|endoftext|>"
PAD_TOKEN = "!"  # msclap's pad token; a special token, id 0


def load_gpt2_tokenizer(path: str | os.PathLike | None = None) -> Any:
    """GPT-2's BPE tokenizer from local files (:func:`find_gpt2_tokenizer`), with msclap's pad
    token ``"!"`` added as a special token (id 0)."""
    from transformers import GPT2TokenizerFast

    folder = find_gpt2_tokenizer(path)
    tokenizer = GPT2TokenizerFast.from_pretrained(str(folder), local_files_only=True)
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    return tokenizer


def msclap_tokenize(
    tokenizer: Any, texts: Sequence[str], max_positions: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """msclap's ``preprocess_text``: ``text + " <|endoftext|>"``, right-padded with id 0 to
    77 tokens -> ``(input_ids, attention_mask)``, int64 ``(num_texts, length)``.

    Quirks kept on purpose, because the model was trained with them: the pad token ``"!"`` is
    *special*, so every ``!`` in a text becomes its own id-0 token with attention 1
    (``"wow!!"`` -> ``[42773, 0, 0]``, not GPT-2's merged ``!!``); GPT-2 adds no BOS; the space
    before EOT is its own token (``..., 220, 50256``). Nothing is truncated: ``length`` grows
    past 77 for longer texts (msclap itself would fail to batch them); more than
    ``max_positions`` tokens is an error.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    encoded = tokenizer([text + EOT_SUFFIX for text in texts])["input_ids"] if texts else []
    length = max([TEXT_LENGTH, *map(len, encoded)])
    if max_positions is not None and length > max_positions:
        raise ValueError(f"a text has {length} tokens; GPT-2 takes at most {max_positions}")
    input_ids = torch.zeros((len(encoded), length), dtype=torch.int64)
    attention_mask = torch.zeros((len(encoded), length), dtype=torch.int64)
    for row, ids in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask
