"""UVCOM's clustering pieces: EM with RBF kernels, the random-walk refinement, slot attention.

All three follow Lighthouse's ``CIM.py`` operation for operation (the parity fixtures pin them to
float rounding). None of them masks padding, except slot attention's one masked softmax: the
centres, the refinement and the slots therefore depend on the padded length, as in Lighthouse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import MLP

__all__ = ["SlotAttention", "em_rbf", "random_walk_refine", "unit_rows"]

RBF_SIGMA = 1.2  # kernel width of the EM soft assignment
RANDOM_WALK_WEIGHT = 0.5  # w: how far the refinement walks from the frames towards the centres
RANDOM_WALK_SHARPNESS = 5.0  # scale of the centre-frame cosines before their softmax


def unit_rows(x: Tensor) -> Tensor:
    """``x / (||x|| + 1e-9)`` over the last axis (Lighthouse's ``calculate_l1_norm``, an L2 norm
    with the epsilon outside the root; ``F.normalize`` rounds differently)."""
    return x / (torch.norm(x, p=2, dim=-1, keepdim=True) + 1e-9)


def em_rbf(centres: Tensor, tokens: Tensor, iterations: int) -> Tensor:
    """Fit ``K`` centres to each sample's tokens by EM with an RBF kernel on unit vectors.

    Each iteration softly assigns every token to the centres (softmax over centres of
    ``-|c - x|^2 / (2 sigma^2)`` on L2-normalised vectors), normalises the assignment over tokens,
    and moves each centre to the assignment-weighted sum of the *raw* tokens. Padded tokens take
    part (Lighthouse passes no mask).

    Args:
        centres: ``[B, K, d]`` initial centres.
        tokens: ``[B, T, d]``.
        iterations: EM steps (``em_iter``).

    Returns:
        ``[B, K, d]`` fitted centres.
    """
    unit_tokens = unit_rows(tokens)
    for _ in range(iterations):
        unit_centres = unit_rows(centres)
        # The exact difference form (not |a|^2 + |b|^2 - 2ab): it keeps Lighthouse's rounding.
        dist2 = ((unit_centres[:, :, None, :] - unit_tokens[:, None, :, :]) ** 2).sum(-1)
        assign = F.softmax(-0.5 * dist2 / RBF_SIGMA**2, dim=1)  # [B, K, T] over centres
        assign = assign / (assign.sum(dim=-1, keepdim=True) + 1e-9)  # then over tokens
        centres = torch.einsum("nkt,ntd->nkd", assign, tokens)
    return centres


def random_walk_refine(
    frames: Tensor, centres: Tensor, weight: float = RANDOM_WALK_WEIGHT
) -> Tensor:
    """Lighthouse's ``BMRW``: one random-walk step between frames and (text) centres.

    ``Z`` = softmax over centres of ``5 cos(centre, frame)``, ``Z^`` = ``Z`` normalised over
    frames, ``A = Z^T Z^`` (frames x frames). The result is
    ``(1 - w) (I - w^2 A) (w Z^T centres + frames)``. Lighthouse writes the middle factor as
    ``torch.linalg.solve(I, I - w^2 A)``, which is ``I - w^2 A`` itself, so no solve is run.

    Args:
        frames: ``[B, L, d]``, padded frames included.
        centres: ``[B, K, d]``.

    Returns:
        ``[B, L, d]``.
    """
    unit_frames, unit_centres = unit_rows(frames), unit_rows(centres)
    eye = torch.eye(frames.shape[1], dtype=frames.dtype, device=frames.device)
    assign = F.softmax(
        torch.einsum("nkd,ntd->nkt", unit_centres, unit_frames) * RANDOM_WALK_SHARPNESS, 1
    )  # [B, K, L]
    assign_frames = assign / (assign.sum(dim=-1, keepdim=True) + 1e-9)
    affinity = torch.einsum("nkt,nkd->ntd", assign, assign_frames)  # [B, L, L]
    walk = eye - (weight**2) * affinity
    towards = weight * torch.einsum("nkt,nkd->ntd", assign, centres) + frames  # [B, L, d]
    return (1 - weight) * torch.einsum("ntk,nkd->ntd", walk, towards)


class SlotAttention(nn.Module):
    """Slot attention without the GRU (UVCOM's ``processer_for_tgt``): slots attend to the
    encoded frames ``num_iterations`` times, each update added to the slots, then an MLP.

    Args:
        num_iterations: attention rounds (5 in Lighthouse).
        d_model: slot and input width.
        mlp_dim: hidden width of the update MLP (1024 in Lighthouse, whatever ``d_model``).
        epsilon: added to the per-slot sums before normalising over inputs.
    """

    def __init__(
        self, num_iterations: int, d_model: int, mlp_dim: int = 1024, epsilon: float = 1e-8
    ) -> None:
        super().__init__()
        self.num_iterations = num_iterations
        self.d_model = d_model
        self.epsilon = epsilon
        # Registration order = Lighthouse's state_dict order.
        self.norm_inputs = nn.LayerNorm(d_model)
        self.norm_slots = nn.LayerNorm(d_model)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.norm_out = nn.LayerNorm(d_model)
        self.project_q = nn.Linear(d_model, d_model)
        self.project_k = nn.Linear(d_model, d_model)
        self.project_v = nn.Linear(d_model, d_model)
        self.mlp = MLP(d_model, mlp_dim, d_model, 3)

    def forward(self, inputs: Tensor, pad_mask: Tensor, slots: Tensor) -> Tensor:
        """Refine ``slots``.

        Args:
            inputs: ``[B, L, d]`` encoded frames.
            pad_mask: ``[B, L]`` True on padded frames.
            slots: ``[B, S, d]`` initial slots.

        Returns:
            ``[B, S, d]``.

        A padded frame gets the lowest score in every slot, so the softmax *over slots* gives it
        an even ``1/S`` share in each: padded frames still feed every slot's update (Lighthouse's
        behaviour).
        """
        inputs = self.norm_inputs(inputs)
        k = self.project_k(inputs)
        v = self.project_v(inputs)
        blocked = pad_mask[:, None, :]
        for _ in range(self.num_iterations):
            slots_prev = slots
            q = self.project_q(self.norm_slots(slots))
            dots = torch.einsum("bid,bjd->bij", q, k) * self.d_model**-0.5  # [B, S, L]
            lowest = -torch.finfo(dots.dtype).max
            attn = dots.masked_fill(blocked, lowest).softmax(dim=1)  # over slots
            attn = attn / (attn.sum(dim=-1, keepdim=True) + self.epsilon)  # over inputs
            slots = slots_prev + torch.einsum("bjd,bij->bid", v, attn)
            slots = slots + self.mlp(self.norm_mlp(slots))
        return self.norm_out(slots)
