"""Tiny tokenizers written from vocabularies made here, for encoder tests without the hub.

``from_pretrained`` on a folder holding ``vocab.json`` + ``merges.txt`` (RoBERTa) or ``vocab.txt``
(BERT) works the same across transformers versions, unlike the tokenizer constructors.
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = ["a", "dog", "barks", "rain", "falls", "on", "the", "roof", "loud", "bird", "sings"]


def write_roberta_tokenizer(folder: Path, model_max_length: int = 32):
    """A byte-level BPE tokenizer: the 256 byte symbols plus whole-word merges for ``WORDS``."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab.setdefault(symbol, len(vocab))
    merges = []
    for word in WORDS:
        piece = "Ġ" + word[0]
        merges.append(f"Ġ {word[0]}")
        vocab.setdefault(piece, len(vocab))
        for char in word[1:]:
            merges.append(f"{piece} {char}")
            piece += char
            vocab.setdefault(piece, len(vocab))
    vocab["<mask>"] = len(vocab)
    merges = list(dict.fromkeys(merges))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "RobertaTokenizer", "model_max_length": model_max_length})
    )
    return AutoTokenizer.from_pretrained(str(folder))


def write_bert_tokenizer(folder: Path, model_max_length: int = 32):
    """A WordPiece tokenizer over ``WORDS`` and a few sub-word pieces."""
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = ["##s", "##ing", "##ed"]
    (folder / "vocab.txt").write_text("\n".join(special + WORDS + pieces) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "model_max_length": model_max_length})
    )
    return AutoTokenizer.from_pretrained(str(folder))
