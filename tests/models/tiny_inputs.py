"""Tiny padded batches for the models' invariant tests (no fixture needed).

:func:`tiny_batch` holds samples padded differently (9, 6 and 2 valid frames of 9; 2, 5 and 1
valid tokens of 5), a ``[TEF | audio]`` context of ``2 + 12`` features (``src_vid`` and
``src_aud``) and 16-wide text, with zeros at every padded position.
"""

from __future__ import annotations

import torch
from torch import Tensor

TXT_DIM, TEF_DIM, AUD_DIM = 16, 2, 12
# Built for checkpoint compatibility only, as in Lighthouse: text tokens get zero positions, so
# the learned text position table never gets a gradient.
UNUSED_TEXT_POSITIONS = {
    "txt_position_embed.position_embeddings.weight",
    "txt_position_embed.LayerNorm.weight",
    "txt_position_embed.LayerNorm.bias",
}


def tiny_batch(batch: int = 3, len_v: int = 9, len_t: int = 5, seed: int = 0) -> dict[str, Tensor]:
    """Model inputs of up to three samples (random features from ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    vid_len = torch.tensor([len_v, len_v - 3, 2][:batch])
    txt_len = torch.tensor([2, len_t, 1][:batch])
    vid_mask = (torch.arange(len_v) < vid_len[:, None]).float()
    txt_mask = (torch.arange(len_t) < txt_len[:, None]).float()
    return dict(
        src_txt=torch.randn(batch, len_t, TXT_DIM, generator=g) * txt_mask[..., None],
        src_txt_mask=txt_mask,
        src_vid=torch.randn(batch, len_v, TEF_DIM, generator=g) * vid_mask[..., None],
        src_vid_mask=vid_mask,
        src_aud=torch.randn(batch, len_v, AUD_DIM, generator=g) * vid_mask[..., None],
        src_aud_mask=vid_mask,
    )


def with_noisy_padding(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same batch with other values at the padded positions (the masks unchanged)."""
    noisy = dict(inputs)
    vid_pad = inputs["src_vid_mask"][..., None] == 0
    txt_pad = inputs["src_txt_mask"][..., None] == 0
    noisy["src_aud"] = torch.where(vid_pad, 5.0, inputs["src_aud"])
    noisy["src_vid"] = torch.where(vid_pad, -3.0, inputs["src_vid"])
    noisy["src_txt"] = torch.where(txt_pad, 7.0, inputs["src_txt"])
    return noisy


def without_text(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same batch with no text token at all (``Lt == 0``)."""
    return {**inputs, "src_txt": inputs["src_txt"][:, :0],
            "src_txt_mask": inputs["src_txt_mask"][:, :0]}  # fmt: skip
