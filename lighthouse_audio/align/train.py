"""Contrastive training of a joint space's two heads (symmetric InfoNCE, CLIP-style).

A sample is one audio window and one caption of the same clip: the baseline compares single
windows with a query at test time, so that is what the heads learn to match. Each epoch visits
every training clip once, in batches of distinct clips (so a batch never holds two positives of
one clip), with one of its windows and one of its captions drawn at random.

With moment-annotated recordings (:mod:`.recordings`), each step also asks the heads to pick a
query's own frames out of its recording: a softmax over the recording's frames whose target is
the frames inside the query's windows (multi-positive cross-entropy). Every recording query is
visited once per epoch, spread over the epoch's steps.

Inputs are standardised per dimension (train-set mean and std) while training and the affine map
is then folded into each head's first linear layer, so the saved heads take the raw stored rows
and carry no extra state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn
from tqdm import tqdm

from lighthouse_audio.joint.space import JointSpace

__all__ = ["HeadsConfig", "head_specs", "train_heads"]

HeadKind = Literal["mlp", "linear"]
INIT_TEMPERATURE = 0.07  # CLIP's
MAX_LOGIT_SCALE = 100.0  # CLIP's clamp: keeps a learnt temperature from collapsing


@dataclass(frozen=True)
class HeadsConfig:
    """Head shapes and optimisation. ``temperature=None`` learns it (from 0.07)."""

    kind: HeadKind = "mlp"
    hidden_dim: int = 256
    dim: int = 128
    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    temperature: float | None = None
    seed: int = 0
    recording_weight: float = 1.0  # of the in-recording loss, when recordings are given

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "linear"):
            raise ValueError(f"head kind must be 'mlp' or 'linear', got {self.kind!r}")
        for name in ("hidden_dim", "dim", "epochs", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be >= 2 (InfoNCE needs negatives), got {self.batch_size}"
            )
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not self.recording_weight >= 0:
            raise ValueError(f"recording_weight must be >= 0, got {self.recording_weight}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_specs(cfg: HeadsConfig, audio_dim: int, text_dim: int) -> dict[str, dict[str, Any]]:
    """``{"audio": ..., "text": ...}`` in :data:`~lighthouse_audio.joint.space.HEADS` form."""

    def spec(dim_in: int) -> dict[str, Any]:
        if cfg.kind == "linear":
            return {"kind": "linear", "dim_in": dim_in, "dim_out": cfg.dim}
        return {"kind": "mlp", "dim_in": dim_in, "dim_hidden": cfg.hidden_dim, "dim_out": cfg.dim}

    return {"audio": spec(audio_dim), "text": spec(text_dim)}


def _first_linear(head: nn.Module) -> nn.Linear:
    return next(m for m in head.modules() if isinstance(m, nn.Linear))  # modules() starts at head


@torch.no_grad()
def fold_standardization(head: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Make ``head(x)`` compute what ``head((x - mean) / std)`` did: ``W' = W / std``,
    ``b' = b - W' mean`` in the first linear layer."""
    linear = _first_linear(head)
    linear.weight.div_(std)
    linear.bias.sub_(linear.weight @ mean)


def _standardizer(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # A floor on std so a near-constant dimension is not blown up into noise.
    std = rows.std(dim=0)
    return rows.mean(dim=0), std.clamp(min=1e-3 * float(std.max().clamp(min=1e-12)))


@contextmanager
def _one_thread_on_cpu(device: torch.device) -> Iterator[None]:
    # Steps this small gain nothing from intra-op threads, and on a busy CPU their spin-waits
    # made them ~60x slower (a 64x512 @ 512x256 matmul: 0.4 ms on 1 thread, 24 ms on 2 shared
    # cores with other jobs running).
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def info_nce(audio: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of unit ``(B, d)`` pairs: row ``i`` of each matches row ``i``."""
    logits = logit_scale * audio @ text.T
    target = torch.arange(len(audio), device=audio.device)
    return (
        nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)
    ) / 2


def in_recording_loss(
    frames: torch.Tensor,
    valid: torch.Tensor,
    inside: torch.Tensor,
    query: torch.Tensor,
    logit_scale: torch.Tensor,
) -> torch.Tensor:
    """Unit frames ``(R, L, d)`` (``valid`` ``(R, L)`` marks real ones), unit queries ``(R, d)``:
    the mean over recordings of ``-log`` of the softmax mass on the ``inside`` frames."""
    logits = (logit_scale * (frames * query[:, None]).sum(-1)).masked_fill(~valid, -math.inf)
    log_prob = logits.log_softmax(dim=-1)
    return -log_prob.masked_fill(~inside, -math.inf).logsumexp(dim=-1).mean()


def _padded(
    rows: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, ...]:
    """Recordings of different lengths as ``(R, L_max, D)`` rows, ``valid`` and ``inside``."""
    length = max(len(r) for r in rows)
    out = rows[0].new_zeros(len(rows), length, rows[0].shape[-1])
    valid = torch.zeros(len(rows), length, dtype=torch.bool)
    inside = torch.zeros(len(rows), length, dtype=torch.bool)
    for i, (r, m) in enumerate(zip(rows, masks, strict=True)):
        out[i, : len(r)], valid[i, : len(r)], inside[i, : len(r)] = r, True, m
    return out, valid, inside


def train_heads(
    space: JointSpace,
    audio: Sequence[torch.Tensor],
    text: Sequence[torch.Tensor],
    cfg: HeadsConfig,
    device: str | torch.device = "cpu",
    progress: bool = True,
    recordings: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = (),
) -> dict[str, float]:
    """Train ``space.audio_head`` and ``space.text_head`` in place on clip ``i``'s windows
    ``audio[i]`` ``(num_windows, audio_dim)`` (stored rows) and pooled captions ``text[i]``
    ``(num_captions, text_dim)`` (:meth:`JointSpace.text_rows`); the heads end on the CPU, in
    eval mode. Returns ``{"loss": last epoch's mean, "temperature": final}``.

    ``recordings``: ``(frames (L, audio_dim) stored rows, pooled query (text_dim,), inside (L,)
    bool)`` per annotated query, for the in-recording loss (module doc).

    Deterministic given ``cfg.seed`` on a given device and torch build.
    """
    if len(audio) != len(text) or len(audio) < 2:
        raise ValueError(f"need at least 2 training clips with captions, got {len(audio)}")
    generator = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG left alone
        torch.manual_seed(cfg.seed)
        for head in (space.audio_head, space.text_head):
            for module in head.modules():
                if isinstance(module, nn.Linear):
                    module.reset_parameters()
    device = torch.device(device)
    audio_rows, text_rows = space.audio_rows(torch.cat(list(audio))), torch.cat(list(text))
    a_mean, a_std = _standardizer(audio_rows)
    t_mean, t_std = _standardizer(text_rows)
    # Flat rows plus offsets, so drawing one window/caption per clip is one gather.
    a_flat = ((audio_rows - a_mean) / a_std).to(device)
    t_flat = ((text_rows - t_mean) / t_std).to(device)
    a_count = torch.tensor([len(x) for x in audio])
    t_count = torch.tensor([len(x) for x in text])
    a_start = torch.cumsum(a_count, 0) - a_count
    t_start = torch.cumsum(t_count, 0) - t_count
    if recordings:  # standardised with the clips' statistics, which the folded heads keep
        rec_rows, rec_valid, rec_inside = _padded(
            [(space.audio_rows(f) - a_mean) / a_std for f, _, _ in recordings],
            [m for _, _, m in recordings],
        )
        rec_rows, rec_valid, rec_inside = (x.to(device) for x in (rec_rows, rec_valid, rec_inside))
        rec_text = ((torch.stack([t for _, t, _ in recordings]) - t_mean) / t_std).to(device)

    space.to(device).train()
    log_scale = torch.tensor(math.log(1 / (cfg.temperature or INIT_TEMPERATURE)), device=device)
    log_scale.requires_grad_(cfg.temperature is None)
    params = [*space.audio_head.parameters(), *space.text_head.parameters()]
    groups = [{"params": params}]
    if cfg.temperature is None:
        groups.append({"params": [log_scale], "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    num_clips = len(audio)
    loss_mean = float("nan")
    with _one_thread_on_cpu(device):
        for _ in tqdm(range(cfg.epochs), desc="align", unit="epoch", disable=not progress):
            order = torch.randperm(num_clips, generator=generator)
            window = a_start + (torch.rand(num_clips, generator=generator) * a_count).long()
            caption = t_start + (torch.rand(num_clips, generator=generator) * t_count).long()
            losses = []
            batches = [b for b in order.split(cfg.batch_size) if len(b) >= 2]  # >= 1 negative
            rec_parts = (
                torch.randperm(len(recordings), generator=generator).tensor_split(len(batches))
                if recordings
                else [None] * len(batches)
            )
            for batch, part in zip(batches, rec_parts, strict=True):
                a = nn.functional.normalize(
                    space.audio_head(a_flat[window[batch].to(device)]), dim=-1
                )
                t = space.text_head(t_flat[caption[batch].to(device)])
                scale = log_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()
                loss = info_nce(a, nn.functional.normalize(t, dim=-1), scale)
                if part is not None and len(part) and cfg.recording_weight:
                    part = part.to(device)
                    frames = nn.functional.normalize(space.audio_head(rec_rows[part]), dim=-1)
                    query = nn.functional.normalize(space.text_head(rec_text[part]), dim=-1)
                    loss = loss + cfg.recording_weight * in_recording_loss(
                        frames, rec_valid[part], rec_inside[part], query, scale
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            loss_mean = sum(losses) / max(len(losses), 1)

    space.cpu().eval()
    fold_standardization(space.audio_head, a_mean, a_std)
    fold_standardization(space.text_head, t_mean, t_std)
    temperature = 1 / float(log_scale.detach().clamp(max=math.log(MAX_LOGIT_SCALE)).exp())
    return {"loss": loss_mean, "temperature": temperature}
