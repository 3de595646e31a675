"""TaskWeave (Yang et al., CVPR 2024) for audio moment retrieval, compatible with Lighthouse.

Two registered variants, ``taskweave_mr2hd`` and ``taskweave_hd2mr`` (Lighthouse's config names;
both configs say ``model_name: taskweave`` and differ only in ``mr2hd``, which is also what
Lighthouse's checkpoints record, so ``taskweave`` is registered unlisted and builds the variant
``opt.mr2hd`` names). The network loads Lighthouse's TaskWeave checkpoints with ``strict=True``
and reproduces its outputs in both of its branches.

Moment retrieval (MR) and highlight detection (HD) get their own memory from one encoder
(``models/taskweave_transformer.py``); the spans are decoded from the MR memory and the saliency
scores come from the HD memory. One task's result feeds the other at inference:

- **MR2HD**: the predicted spans, rasterised on a frame grid, re-weight the HD memory;
- **HD2MR**: frames scored above the mean saliency have their projected audio doubled, and the
  whole transformer runs again for the spans.

**Epochs.** Like Lighthouse's, the forward depends on the training epoch: epochs 0-99 (``epoch_i
<= 99``) take the *training* branch (one pass; spans and saliency independently), and
``epoch_i is None`` or ``>= 100`` the *inference* branch above. The epoch comes from the
``epoch_i`` argument or, when it is not passed, from :meth:`TaskWeave.set_epoch`, which the
training loop calls before every epoch on the trained and the validated model (so validation
during epochs 0-99 uses the training branch, as in Lighthouse). A freshly built or loaded model
has no epoch: ``lighthouse infer``, ``lighthouse predict`` and the predictor take the inference
branch, as Lighthouse's ``evaluate.py`` and its predictor do.

**Training objective.** Lighthouse weighs the two tasks by learned log-variances
(``hd_log_var``, ``mr_log_var``, returned by the forward): ``2 L_hd exp(-hd_log_var) + L_mr
exp(-mr_log_var) + hd_log_var + mr_log_var`` with ``L_hd = loss_saliency`` and ``L_mr`` the
unweighted sum of every span/giou/label term (aux layers included); see
:class:`TaskWeaveCriterion`. The config's loss weights only weigh what is logged. The forward
returns the log-variances as two extra output keys after Lighthouse's six.

Lighthouse quirks kept because they define its results (its checkpoints were trained with them):

- the MR side convolution is masked with the *padding* mask instead of the valid mask
  (a Lighthouse bug; :class:`~.taskweave_transformer.MaskedConv1D`);
- the text-to-audio attention mask has QD-DETR's head-tiling quirk (a head sees another
  sample's frame/token mask; :func:`~.attention.t2v_attention_mask`), computed per half when the
  negative pass shares the batch;
- max-pools, the HD2MR mean threshold and the MR2HD grid see the padded frames, so outputs
  depend on the padded batch length;
- the MR2HD frame weights are laid on a grid of normalised span positions, not on each clip's
  frames (bin ``i`` is position ``i / Lv`` of the padded length, whatever the clip's length).

**Not a crash: MR2HD at padded lengths other than 75.** Lighthouse hard-codes a 150-cell grid
(``duration = 150``) averaged in pairs to 75 values, then multiplies them into the ``[B, Lv, d]``
HD memory, which fails with a size mismatch whenever the batch is not padded to exactly 75
frames (every Clotho-Moment batch of 60-frame clips, and every CASTELLA batch). Here the grid has
``2 * Lv`` cells (:func:`mr2hd_frame_weights`): at ``Lv = 75`` that is Lighthouse's grid and its
numbers, and at any other length it is the same construction at that length. The training branch
and the HD2MR variant never had the problem.

Lighthouse's transformer moves a tensor to the GPU unconditionally (which made it GPU-only); that
is not reproduced: the model runs on any device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lighthouse_audio.registry import MODELS
from lighthouse_audio.spans import span_cxw_to_xx

from .attention import t2v_attention_mask
from .bundle import ModelBundle
from .criterion import LayerMatches, SetCriterion, build_criterion
from .input_projection import input_projection
from .layers import MLP, aux_outputs, inverse_sigmoid
from .options import ContextDETRConfig, check_dims, detr_arguments, refuse_options
from .position_encoding import PositionEmbeddingSine, TrainablePositionalEncoding
from .postprocess import build_batch_postprocessor
from .qd_detr import txt_roll
from .taskweave_transformer import TaskWeaveTransformer

__all__ = [
    "INFERENCE_FROM_EPOCH",
    "LOG_VAR_KEYS",
    "VARIANTS",
    "TaskWeave",
    "TaskWeaveConfig",
    "TaskWeaveCriterion",
    "build_model",
    "mr2hd_frame_weights",
]

# Lighthouse: "epoch_thres = 100  # half of max_epoch"; from this epoch on (and with no epoch)
# the forward takes the inference branch.
INFERENCE_FROM_EPOCH = 100
# Extra output keys (after Lighthouse's six): the learned task log-variances, [1] each.
LOG_VAR_KEYS = ("hd_log_var", "mr_log_var")
# Registered variants: name -> mr2hd.
VARIANTS: dict[str, bool] = {"taskweave_mr2hd": True, "taskweave_hd2mr": False}
LIGHTHOUSE_MODEL_NAME = "taskweave"  # what Lighthouse's configs and checkpoints say


class _ModelEpoch:
    """Default of ``TaskWeave.forward(epoch_i=...)``: use the epoch set by ``set_epoch``."""

    def __repr__(self) -> str:
        return "MODEL_EPOCH"


MODEL_EPOCH: Any = _ModelEpoch()


class TaskWeave(nn.Module):
    """TaskWeave: a text-conditioned audio encoder with one memory per task, a span decoder on
    the moment-retrieval memory and a saliency head on the highlight memory.

    Args:
        txt_dim: text feature width (768 for CLAP).
        vid_dim: width of the "video" context; in ``audio_tef`` mode the 2-d TEF plus the audio
            width (TEF first), since ``src_aud`` is appended to ``src_vid``.
        hidden_dim: model width; the decoder only works with 256 (as in Lighthouse).
        nheads, enc_layers, dec_layers, dim_feedforward, dropout: transformer settings
            (``enc_layers`` is the text-to-audio stack; the shared encoder always has 2 layers).
        num_queries: number of span queries.
        n_input_proj: input projection blocks (1 to 3).
        input_dropout: dropout inside the input projections.
        aux_loss: also return every earlier decoder layer's predictions in ``aux_outputs``.
        max_q_l: size of the (unused) learned text position table.
        mr2hd: the MR2HD variant (True) or HD2MR (False).
        batched_negative: run the negative-text pass in the same batch as the positive one.
    """

    def __init__(
        self,
        txt_dim: int,
        vid_dim: int,
        hidden_dim: int = 256,
        nheads: int = 8,
        enc_layers: int = 2,
        dec_layers: int = 2,
        dim_feedforward: int = 1024,
        num_queries: int = 10,
        n_input_proj: int = 2,
        input_dropout: float = 0.5,
        dropout: float = 0.1,
        aux_loss: bool = True,
        max_q_l: int = 32,
        mr2hd: bool = True,
        batched_negative: bool = True,
    ) -> None:
        super().__init__()
        check_dims(hidden_dim, nheads, n_input_proj, fixed_width="TaskWeave")
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.aux_loss = aux_loss
        self.mr2hd = mr2hd
        self.batched_negative = batched_negative
        # The negative pass only feeds the training loss; prediction switches it off.
        self.negative_pass = True
        self.epoch: int | None = None  # set_epoch; None: inference branch

        # Construction order = Lighthouse's, so a seed gives the same initial weights.
        self.transformer = TaskWeaveTransformer(
            hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout
        )
        self.position_embed = PositionEmbeddingSine(hidden_dim, normalize=True)
        # Built for checkpoint compatibility only: text tokens get zero positions.
        self.txt_position_embed = TrainablePositionalEncoding(max_q_l, hidden_dim, input_dropout)
        self.span_embed = MLP(hidden_dim, hidden_dim, 2, 3)
        self.class_embed = nn.Linear(hidden_dim, 2)  # 0: foreground, 1: background
        self.query_embed = nn.Embedding(num_queries, 2)  # anchors (center, width) before sigmoid
        self.input_txt_proj = input_projection(txt_dim, hidden_dim, n_input_proj, input_dropout)
        self.input_vid_proj = input_projection(vid_dim, hidden_dim, n_input_proj, input_dropout)
        self.saliency_proj_linear = nn.Linear(hidden_dim, hidden_dim)
        self.saliency_proj_local = nn.Conv1d(hidden_dim, hidden_dim, 1)
        self.output_saliency = nn.Linear(hidden_dim, 1)
        # Learned task log-variances of the training objective (first in the state_dict).
        self.hd_log_var = nn.Parameter(torch.zeros(1))
        self.mr_log_var = nn.Parameter(torch.zeros(1))

    def set_epoch(self, epoch: int | None) -> None:
        """The training epoch (0-based) the next calls belong to; None: inference."""
        self.epoch = epoch

    def inference_branch(self, epoch_i: int | None) -> bool:
        return epoch_i is None or epoch_i + 1 > INFERENCE_FROM_EPOCH

    def forward(
        self,
        src_txt: Tensor,
        src_txt_mask: Tensor,
        src_vid: Tensor,
        src_vid_mask: Tensor,
        src_aud: Tensor | None = None,
        src_aud_mask: Tensor | None = None,
        epoch_i: Any = MODEL_EPOCH,
    ) -> dict[str, Any]:
        """Predict spans and frame saliency.

        Args:
            src_txt: ``[B, Lt, txt_dim]`` text tokens; src_txt_mask: ``[B, Lt]``, 1 valid, 0 pad.
            src_vid: ``[B, Lv, Dv]`` context (the TEF in ``audio_tef`` mode);
                src_vid_mask: ``[B, Lv]``, 1 valid, 0 pad. This is the only context mask used.
            src_aud: ``[B, Lv, Da]`` audio frames, appended to ``src_vid`` (``Dv + Da == vid_dim``).
            src_aud_mask: accepted for Lighthouse's call signature and ignored, as in Lighthouse.
            epoch_i: Lighthouse's epoch argument (int, or None for inference); by default the
                epoch given to :meth:`set_epoch`.

        Returns:
            A dict, in this key order:
            - ``pred_logits``: ``[B, Q, 2]``, class 0 = foreground.
            - ``pred_spans``: ``[B, Q, 2]`` normalised (center, width) after a sigmoid.
            - ``saliency_scores``: ``[B, Lv]`` for every frame, padding included.
            - ``saliency_scores_neg``: ``[B, Lv]``, sample ``i`` with text ``i+1`` (the last
              with the first); absent when ``negative_pass`` is off (prediction).
            - ``video_mask``: ``src_vid_mask`` unchanged.
            - ``aux_outputs`` (if ``aux_loss``): ``dec_layers - 1`` dicts with ``pred_logits``
              and ``pred_spans`` of the earlier decoder layers.
            - ``hd_log_var``, ``mr_log_var``: ``[1]`` learned log-variances (Lighthouse returns
              them beside the dict).
        """
        if src_txt.shape[1] == 0:
            raise ValueError("TaskWeave needs at least one text token per batch, got Lt == 0")
        epoch = self.epoch if epoch_i is MODEL_EPOCH else epoch_i
        inference = self.inference_branch(epoch)
        if src_aud is not None:
            src_vid = torch.cat((src_vid, src_aud), dim=2)

        vid = self.input_vid_proj(src_vid)  # [B, Lv, d]
        txt = self.input_txt_proj(src_txt)  # [B, Lt, d]
        vid_pos = self.position_embed(vid, src_vid_mask)
        vid_pad = ~src_vid_mask.bool()
        txt_pad = ~src_txt_mask.bool()
        batch = vid.shape[0]

        # First pass (own text) and, for the loss, the negative pass (the next sample's text).
        blocked = t2v_attention_mask(vid_pad, txt_pad, self.transformer.nhead)
        mr_memory, hd_memory = self._encode_with_negative(
            vid, vid_pos, vid_pad, txt, txt_pad, blocked
        )
        hd_neg = hd_memory[batch:]
        mr_memory, hd_memory = mr_memory[:batch], hd_memory[:batch]
        saliency = None
        if inference and not self.mr2hd:
            # HD2MR: frames above the mean saliency (over every padded frame) get their
            # projected audio doubled; the spans come from a second pass on that input.
            saliency = self.saliency(hd_memory)
            above = (saliency > saliency.mean(dim=1, keepdim=True)).to(vid.dtype)
            vid = vid + vid * above.unsqueeze(-1)
            mr_memory, _ = self.transformer.encode(vid, vid_pos, vid_pad, txt, blocked)

        hs, references = self.transformer.decode(
            mr_memory, vid_pos, vid_pad, self.query_embed.weight
        )
        outputs_class = self.class_embed(hs)  # [layers, B, Q, 2]
        outputs_coord = (self.span_embed(hs) + inverse_sigmoid(references)).sigmoid()

        if saliency is None and inference:  # MR2HD: spans re-weight the highlight memory
            weights = mr2hd_frame_weights(outputs_coord[-1], hd_memory.shape[1])
            saliency = self.saliency(hd_memory + hd_memory * weights.unsqueeze(-1), hd_memory)
        elif saliency is None:  # training branch, both variants
            saliency = self.saliency(hd_memory)

        out: dict[str, Any] = {
            "pred_logits": outputs_class[-1],
            "pred_spans": outputs_coord[-1],
            "saliency_scores": saliency,
        }
        if self.negative_pass:
            out["saliency_scores_neg"] = self.saliency(hd_neg)
        out["video_mask"] = src_vid_mask
        if self.aux_loss:
            out["aux_outputs"] = aux_outputs(outputs_class, outputs_coord)
        out["hd_log_var"] = self.hd_log_var
        out["mr_log_var"] = self.mr_log_var
        return out

    def _encode_with_negative(
        self,
        vid: Tensor,
        vid_pos: Tensor,
        vid_pad: Tensor,
        txt: Tensor,
        txt_pad: Tensor,
        blocked: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Task memories of ``[own text | next sample's text]`` (``2B`` rows), or only the first
        ``B`` when the negative pass is off. Each half gets its own text-to-audio mask (it
        depends on the batch: :func:`~.attention.t2v_attention_mask`)."""
        if not self.negative_pass:
            return self.transformer.encode(vid, vid_pos, vid_pad, txt, blocked)
        txt_neg = txt_roll(txt)
        blocked_neg = t2v_attention_mask(vid_pad, txt_roll(txt_pad), self.transformer.nhead)
        if self.batched_negative:
            return self.transformer.encode(
                vid.repeat(2, 1, 1),
                vid_pos.repeat(2, 1, 1),
                vid_pad.repeat(2, 1),
                torch.cat((txt, txt_neg)),
                torch.cat((blocked, blocked_neg)),
            )
        mr_pos, hd_pos = self.transformer.encode(vid, vid_pos, vid_pad, txt, blocked)
        mr_neg, hd_neg = self.transformer.encode(vid, vid_pos, vid_pad, txt_neg, blocked_neg)
        return torch.cat((mr_pos, mr_neg)), torch.cat((hd_pos, hd_neg))

    def saliency(self, memory: Tensor, summed: Tensor | None = None) -> Tensor:
        """Frame saliency ``[N, Lv]`` from a highlight memory ``[N, Lv, d]``: a projection head
        plus the feature sum of ``summed`` (default: ``memory``) over ``sqrt(d)``. MR2HD passes
        its re-weighted memory and, as Lighthouse, the plain one for the sum."""
        summed = memory if summed is None else summed
        local = self.saliency_proj_local(self.saliency_proj_linear(memory).transpose(1, 2))
        head = self.output_saliency(local.transpose(1, 2)).squeeze(-1)
        return head + summed.sum(dim=-1) / math.sqrt(self.hidden_dim)


def mr2hd_frame_weights(pred_spans: Tensor, num_frames: int) -> Tensor:
    """MR2HD's per-frame weights from the final spans: ``[B, Q, 2]`` cxw -> ``[B, num_frames]``.

    Every query marks the cells ``start..end`` (inclusive) of a grid of ``2 * num_frames`` cells
    over the normalised span axis (positions scaled by the cell count, clamped to the grid and
    truncated); the marks are summed over queries, averaged in pairs down to one value per frame
    and L2-normalised. Lighthouse's grid always has 150 cells, i.e. this at ``num_frames = 75``
    and a size-mismatch crash at any other padded length (module docstring).
    """
    cells = 2 * num_frames
    bounds = (span_cxw_to_xx(pred_spans) * cells).clamp(min=0, max=cells - 1).int()  # [B, Q, 2]
    grid = torch.arange(cells, device=pred_spans.device)
    marked = (bounds[..., :1] <= grid) & (bounds[..., 1:] >= grid)  # [B, Q, cells]
    counts = marked.to(pred_spans.dtype).sum(dim=1).view(-1, num_frames, 2)
    weights = (counts[..., 0] + counts[..., 1]) / 2
    return weights / torch.norm(weights, p=2, dim=1, keepdim=True)


@dataclass(frozen=True, kw_only=True)
class TaskWeaveConfig(ContextDETRConfig):
    """The config keys the network reads (see :class:`~.options.DETRConfig`)."""

    model: ClassVar[str] = LIGHTHOUSE_MODEL_NAME
    fixed_width: ClassVar[str | None] = "TaskWeave"

    mr2hd: bool

    def check(self) -> None:
        super().check()
        if not isinstance(self.mr2hd, bool):
            raise ValueError(f"mr2hd must be true or false, got {self.mr2hd!r}")


def build_model(opt: Mapping[str, Any], batched_negative: bool = True) -> TaskWeave:
    """Build TaskWeave from Lighthouse's flat config keys (``mr2hd`` picks the variant)."""
    cfg = TaskWeaveConfig.from_opt(opt)
    return TaskWeave(
        txt_dim=cfg.t_feat_dim,
        vid_dim=cfg.context_dim,
        **detr_arguments(cfg),
        mr2hd=cfg.mr2hd,
        batched_negative=batched_negative,
    )


class TaskWeaveCriterion(nn.Module):
    """QD-DETR's losses (what Lighthouse logs, weighted by ``weight_dict``) plus TaskWeave's
    training objective, :meth:`objective`, which the training loop minimises instead of the
    weighted sum.

    Args:
        losses: the matching and loss terms (Lighthouse's TaskWeave ``SetCriterion`` is
            QD-DETR's: hinge + rank-contrastive + negative-pair saliency).
        hd_weight: the factor of the highlight term (Lighthouse: 2).
    """

    MR_TERMS = ("span", "giou", "label")

    def __init__(self, losses: SetCriterion, hd_weight: float = 2.0) -> None:
        super().__init__()
        self.losses = losses
        self.weight_dict = losses.weight_dict
        self.hd_weight = hd_weight

    @property
    def last_matches(self) -> LayerMatches | None:
        return self.losses.last_matches

    def forward(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Tensor]:
        """``SetCriterion``'s losses, plus the model's ``hd_log_var``/``mr_log_var`` (as scalars,
        logged beside the losses) when the outputs carry them."""
        losses = self.losses(outputs, targets)
        for key in LOG_VAR_KEYS:
            if key in outputs:
                losses[key] = outputs[key].reshape(())
        return losses

    def objective(self, losses: Mapping[str, Tensor]) -> Tensor:
        """``hd_weight L_hd exp(-hd_log_var) + L_mr exp(-mr_log_var) + hd_log_var +
        mr_log_var``: ``L_hd = loss_saliency``; ``L_mr`` the unweighted sum of the span, giou and
        label terms of ``weight_dict`` (aux layers included), in its order, as Lighthouse."""
        missing = [key for key in (*LOG_VAR_KEYS, "loss_saliency") if key not in losses]
        if missing:
            raise KeyError(f"TaskWeave's objective needs {', '.join(missing)} in the losses")
        hd_log_var, mr_log_var = losses["hd_log_var"], losses["mr_log_var"]
        terms = [
            losses[key]
            for key in self.weight_dict
            if key in losses and any(term in key for term in self.MR_TERMS)
        ]
        loss_mr = sum(terms[1:], start=terms[0])
        return (
            self.hd_weight * losses["loss_saliency"] * torch.exp(-hd_log_var)
            + loss_mr * torch.exp(-mr_log_var)
            + hd_log_var
            + mr_log_var
        )


def build_bundle(opt: Mapping[str, Any]) -> ModelBundle:
    """TaskWeave (the variant ``opt.mr2hd`` names) with its criterion and Lighthouse's
    evaluation post-processing; registered as ``taskweave``, Lighthouse's ``model_name``."""
    refuse_options(
        opt,
        LIGHTHOUSE_MODEL_NAME,
        static_shapes_reason="its max-pools, HD2MR threshold and MR2HD grid see the padded frames",
    )
    return ModelBundle(
        model=build_model(opt),
        criterion=TaskWeaveCriterion(build_criterion(opt)),
        postprocessor=build_batch_postprocessor(opt),
    )


def _variant(name: str, mr2hd: bool):
    def build(opt: Mapping[str, Any]) -> ModelBundle:
        """TaskWeave's registered variant: ``mr2hd`` as its name says (a config saying
        otherwise is refused)."""
        if opt.get("mr2hd", mr2hd) != mr2hd:
            raise ValueError(f"{name} has mr2hd {mr2hd}, but the config says {opt['mr2hd']}")
        return build_bundle({**opt, "mr2hd": mr2hd})

    build.__name__ = build.__qualname__ = f"build_{name}"
    return build


for _name, _mr2hd in VARIANTS.items():
    MODELS.register(_variant(_name, _mr2hd), name=_name)
MODELS.register(build_bundle, name=LIGHTHOUSE_MODEL_NAME, listed=False)
