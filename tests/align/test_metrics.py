from __future__ import annotations

import math

import pytest
import torch

from lighthouse_audio.align.metrics import format_table, retrieval_recall


def test_hand_worked_recall():
    # 3 clips on the axes; captions 0, 1 of clip 0, caption 2 of clip 1, caption 3 of clip 2.
    audio = torch.eye(3)
    text = torch.tensor([[1.0, 0, 0], [0, 0.9, 0.5], [0, 1.0, 0], [0.6, 0, 0.4]])
    owners = torch.tensor([0, 0, 1, 2])
    r = retrieval_recall(audio, text, owners, ks=(1, 2))
    # caption 1 ranks its clip 0 last (miss), caption 3 ranks its clip 2 second.
    assert r["text_to_audio"] == {"recall@1": 0.5, "recall@2": 0.75}
    # clip 0: best caption 0 (hit); clip 1: caption 2 (hit); clip 2: caption 3 is 2nd of 4.
    assert r["audio_to_text"] == pytest.approx({"recall@1": 2 / 3, "recall@2": 1.0})
    assert r["chance"]["text_to_audio"] == pytest.approx({"recall@1": 1 / 3, "recall@2": 2 / 3})
    # clip 0 has 2 of 4 captions: 1 - C(2,k)/C(4,k); the others 1 of 4.
    a2t = [(1 - math.comb(2, k) / math.comb(4, k) + 2 * (k / 4)) / 3 for k in (1, 2)]
    expected = {"recall@1": a2t[0], "recall@2": a2t[1]}
    assert r["chance"]["audio_to_text"] == pytest.approx(expected)
    assert (r["num_clips"], r["num_captions"]) == (3, 4)
    table = format_table(r)
    assert "text->audio" in table and "0.500" in table


def test_k_beyond_the_pool_is_certain():
    r = retrieval_recall(torch.eye(2), torch.eye(2), torch.arange(2), ks=(5,))
    assert r["text_to_audio"]["recall@5"] == 1.0
    assert r["chance"]["text_to_audio"]["recall@5"] == 1.0
    assert r["chance"]["audio_to_text"]["recall@5"] == 1.0
