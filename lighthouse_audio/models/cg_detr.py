"""CG-DETR (Moon et al., "Correlation-guided Query-Dependency Calibration", 2023) for audio
moment retrieval, compatible with Lighthouse.

The network loads Lighthouse's CG-DETR checkpoints with ``strict=True`` and reproduces its
eval-mode outputs (README §6.2 of the model fixtures). Beyond QD-DETR it adds:

- learned **dummy tokens**, encoded with the text (``txtproj_encoder``) and prepended to it as
  keys of the text-to-audio attention, which give no value: a frame unrelated to the query can
  put its attention there (:class:`~.cg_detr_transformer.DummyAwareAttention`);
- a **global token** built per sample from learned prompts (``global_rep_token``) chosen by the
  frames' similarity, weighted by the attention each frame gives the real text;
- a **negative pass** only for samples whose neighbour is another recording (``vid`` differs);
- with ``targets`` (training), **moment / non-moment tokens** and **sentence tokens** for the
  moment-sentence alignment and attention-distillation losses (``cg_detr_criterion.py``).

Training needs ``vid`` and ``targets`` in the forward call (``training_inputs``), and draws its
saliency labels with a clip length of ``duration / frames`` (``dataset_options``), as
Lighthouse's ``CGDETR_StartEndDataset`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lighthouse_audio.registry import MODELS

from .bundle import ModelBundle
from .cg_detr_criterion import build_cg_detr_criterion, relevant_clips
from .cg_detr_transformer import CGDETRTransformer, CGEncoderLayer, Encoded
from .input_projection import LinearLayer, input_projection
from .layers import MLP, aux_outputs, inverse_sigmoid
from .options import (
    AT_LEAST_1,
    ContextDETRConfig,
    check_config,
    check_dims,
    detr_arguments,
    refuse_options,
)
from .position_encoding import PositionEmbeddingSine, TrainablePositionalEncoding
from .postprocess import build_batch_postprocessor
from .transformer import TransformerEncoder

# The training-only outputs (None in evaluation), see CGDETR._moment_outputs.
MOMENT_KEYS = (
    "memory_moment",
    "nmmemory_moment",
    "sentence_txt",
    "sentence_dummy",
    "moment2txt_similarity",
    "nmoment2txt_similarity",
    "moment_mask",
    "src_vid",
)
# Lighthouse builds the dummy-token and sentence encoders with these, whatever the config says.
HELPER_HEADS = 8
HELPER_DROPOUT = 0.1


def real_negative_rows(vid: Sequence[str], device: torch.device) -> Tensor:
    """``[B]`` bool: sample i's recording differs from sample i+1's (the last from the first),
    so pairing it with the next sample's text makes a true negative."""
    nxt = list(vid[1:]) + list(vid[:1])
    return torch.tensor([a != b for a, b in zip(vid, nxt, strict=True)], device=device)


class CGDETR(nn.Module):
    """CG-DETR: dummy-aware text-to-audio encoder, prompt-built global token, DAB decoder.

    Args:
        txt_dim: text feature width; vid_dim: ``[TEF | audio]`` width (2 + audio width).
        hidden_dim: model width (divisible by 8 and by ``nheads``).
        nheads, enc_layers, dec_layers, dim_feedforward, dropout: transformer settings.
        t2v_layers, dummy_layers, sent_layers, moment_layers: layers of the text-to-audio, dummy
            (``txtproj_encoder``), sentence (``scls_encoder``) and moment (``mcls_encoder``)
            encoders.
        num_dummies: dummy tokens; total_prompts: learned prompts; num_prompts: how many of them
            make each global token.
        num_queries, n_input_proj, input_dropout, aux_loss, max_q_l: as for QD-DETR.
    """

    # What the training loop passes beyond collate's inputs (models/training_inputs.py).
    training_inputs: ClassVar[tuple[str, ...]] = ("vid", "qid", "targets")
    dataset_options: ClassVar[dict[str, str]] = {"saliency_clip": "duration"}

    def __init__(
        self,
        txt_dim: int,
        vid_dim: int,
        hidden_dim: int = 256,
        nheads: int = 8,
        enc_layers: int = 3,
        dec_layers: int = 3,
        dim_feedforward: int = 1024,
        num_queries: int = 10,
        n_input_proj: int = 2,
        input_dropout: float = 0.5,
        dropout: float = 0.1,
        aux_loss: bool = True,
        max_q_l: int = 32,
        t2v_layers: int = 2,
        dummy_layers: int = 2,
        sent_layers: int = 1,
        moment_layers: int = 1,
        num_dummies: int = 45,
        total_prompts: int = 10,
        num_prompts: int = 2,
    ) -> None:
        super().__init__()
        _check_dims(hidden_dim, nheads, n_input_proj)
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.aux_loss = aux_loss
        self.num_dummies = num_dummies
        self.num_prompts = num_prompts

        # Construction order = Lighthouse's (a seed draws the same weights); the parameters
        # registered on this module come first in the state dict whatever the order.
        self.transformer = CGDETRTransformer(
            hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout,
            t2v_layers=t2v_layers, moment_layers=moment_layers,
        )  # fmt: skip
        self.position_embed = PositionEmbeddingSine(hidden_dim, normalize=True)
        # Built for checkpoint compatibility only: text tokens get zero positions.
        self.txt_position_embed = TrainablePositionalEncoding(max_q_l, hidden_dim, input_dropout)
        self.span_embed = MLP(hidden_dim, hidden_dim, 2, 3)
        self.class_embed = nn.Linear(hidden_dim, 2)  # 0: foreground, 1: background
        self.token_type_embeddings = nn.Embedding(2, hidden_dim)  # 0: text, 1: audio frame
        nn.init.normal_(self.token_type_embeddings.weight, std=0.02)
        self.query_embed = nn.Embedding(num_queries, 2)  # anchors (center, width) before sigmoid
        self.input_txt_proj = input_projection(txt_dim, hidden_dim, n_input_proj, input_dropout)
        self.input_vid_proj = input_projection(vid_dim, hidden_dim, n_input_proj, input_dropout)
        self.saliency_proj1 = nn.Linear(hidden_dim, hidden_dim)
        self.saliency_proj2 = nn.Linear(hidden_dim, hidden_dim)
        self.global_rep_token = nn.Parameter(torch.randn(total_prompts, hidden_dim))
        self.global_rep_pos = nn.Parameter(torch.randn(1, hidden_dim))
        self.moment_rep_token = nn.Parameter(torch.randn(hidden_dim))
        self.moment_rep_pos = nn.Parameter(torch.randn(hidden_dim))
        self.dummy_rep_token = nn.Parameter(torch.randn(num_dummies, hidden_dim))
        self.dummy_rep_pos = nn.Parameter(torch.randn(num_dummies, hidden_dim))
        self.sent_rep_token = nn.Parameter(torch.randn(hidden_dim))
        self.sent_rep_pos = nn.Parameter(torch.randn(hidden_dim))
        # Built for checkpoint compatibility only: Lighthouse never calls it.
        self.txt_proj_linear = LinearLayer(txt_dim, hidden_dim, HELPER_DROPOUT, relu=True)
        self.txtproj_encoder = TransformerEncoder(
            CGEncoderLayer(hidden_dim, HELPER_HEADS, dim_feedforward, HELPER_DROPOUT), dummy_layers
        )
        self.scls_encoder = TransformerEncoder(
            CGEncoderLayer(hidden_dim, HELPER_HEADS, dim_feedforward, HELPER_DROPOUT), sent_layers
        )

    def forward(
        self,
        src_txt: Tensor,
        src_txt_mask: Tensor,
        src_vid: Tensor,
        src_vid_mask: Tensor,
        vid: Sequence[str] | None = None,
        qid: Sequence[Any] | None = None,
        src_aud: Tensor | None = None,
        src_aud_mask: Tensor | None = None,
        targets: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Predict spans and frame saliency (Lighthouse's call signature).

        Args:
            src_txt: ``[B, Lt, txt_dim]``; src_txt_mask: ``[B, Lt]`` 1 valid, 0 pad.
            src_vid: ``[B, Lv, 2]`` TEF; src_vid_mask: ``[B, Lv]``, the only context mask used.
            vid: recording names; with them the negative pass runs for the samples whose
                neighbour is another recording. qid: accepted and unused, as in Lighthouse.
            src_aud: ``[B, Lv, Da]`` audio, appended to ``src_vid``; src_aud_mask: ignored.
            targets: the training targets (``relevant_clips`` or ``saliency_all_labels``); with
                them the moment and sentence tokens are computed.

        Returns:
            A dict in Lighthouse's key order: ``pred_logits``, ``pred_spans`` ``[B, Q, 2]``;
            ``saliency_scores_neg`` ``[N, Lv]``, ``src_txt_mask_neg`` ``[N, nd+Lt]`` (only when
            N > 0 rows are real negatives), ``t2vattnvalues_neg`` ``[N, Lv]`` and
            ``real_neg_mask`` ``[B]`` (None without ``vid``; the first two None when N = 0);
            ``saliency_scores`` ``[B, Lv]``; ``memory_moment``, ``nmmemory_moment``,
            ``sentence_txt``, ``sentence_dummy`` ``[B, d]``, ``moment2txt_similarity``,
            ``nmoment2txt_similarity`` ``[B, Lv, nd+Lt]`` (None without targets);
            ``cate_attn_weights`` ``[B, Lv, nd+Lt]``; ``moment_mask`` ``[B, Lv]`` bool (None
            without targets); ``txt_mask`` ``[B, nd+Lt]``; ``t2vattnvalues`` ``[B, Lv]`` (mass
            on valid text, in [0, 1]); ``dummy_tokens`` ``[B, nd, d]``; ``global_rep_tokens``
            ``[P, d]``; ``src_vid`` ``[B, Lv, d]`` (None without targets); ``video_mask``;
            ``aux_outputs`` (with ``aux_loss``).
        """
        if src_txt.shape[1] == 0:
            # Lighthouse prints a message and exits the process; an error says the same.
            raise ValueError("CG-DETR needs at least one text token per batch, got Lt == 0")
        if src_aud is not None:
            src_vid = torch.cat((src_vid, src_aud), dim=2)
        num_dummies = self.num_dummies
        type_txt, type_vid = self.token_type_embeddings.weight
        frames = self.input_vid_proj(src_vid) + type_vid  # [B, Lv, d]
        txt = self.input_txt_proj(src_txt) + type_txt  # [B, Lt, d]
        frame_pos = self.position_embed(frames, src_vid_mask)
        txt_pos = torch.zeros_like(txt)
        batch = frames.shape[0]
        vid_pad = ~src_vid_mask.bool()
        txt_pad = ~src_txt_mask.bool()

        # Dummy tokens: encoded with each sample's text, then prepended to it as T2V keys.
        dummy_pos = self.dummy_rep_pos.expand(batch, -1, -1)
        key_pad = F.pad(txt_pad, (num_dummies, 0), value=False)  # dummies are always valid
        encoded = self.txtproj_encoder(
            torch.cat((self.dummy_rep_token.expand(batch, -1, -1), txt), dim=1),
            torch.cat((dummy_pos, txt_pos), dim=1),
            key_pad,
        )
        dummy_tokens = encoded[:, :num_dummies]
        keys = torch.cat((dummy_tokens, txt), dim=1)  # [B, nd + Lt, d]
        key_pos = torch.cat((dummy_pos, txt_pos), dim=1)
        txt_mask = F.pad(src_txt_mask, (num_dummies, 0), value=1.0)  # [B, nd + Lt]

        num_frames = src_vid_mask.sum(1)
        valid = torch.arange(frames.shape[1], device=frames.device) < num_frames[:, None]
        ctx = ((frames * valid[..., None]).sum(1) / num_frames[:, None]).detach()  # mean frame

        main = self._encode(frames, frame_pos, vid_pad, ctx, keys, key_pos, key_pad)
        hs, references = self.transformer.decode(
            main.memory_local, frame_pos, vid_pad, self.query_embed.weight
        )
        outputs_class = self.class_embed(hs)  # [layers, B, Q, 2]
        outputs_coord = (self.span_embed(hs) + inverse_sigmoid(references)).sigmoid()
        out: dict[str, Any] = {"pred_logits": outputs_class[-1], "pred_spans": outputs_coord[-1]}

        if vid is None:  # Lighthouse's demo path: no negative pass
            out.update(saliency_scores_neg=None, t2vattnvalues_neg=None, real_neg_mask=None)
        else:
            real_neg = real_negative_rows(vid, frames.device)
            if bool(real_neg.any()):
                # Real-negative rows keep their frames, positions and ctx but take the next
                # sample's [dummy tokens | text] (the dummies travel with the text).
                def rows(x: Tensor) -> Tensor:
                    return x[real_neg]

                def next_rows(x: Tensor) -> Tensor:
                    return x.roll(-1, dims=0)[real_neg]

                neg = self._encode(
                    rows(frames), rows(frame_pos), rows(vid_pad), rows(ctx),
                    next_rows(keys), rows(key_pos), next_rows(key_pad),
                )  # fmt: skip
                txt_mask_neg = next_rows(txt_mask)
                out["saliency_scores_neg"] = self.saliency(neg.memory_local, neg.memory_global)
                out["src_txt_mask_neg"] = txt_mask_neg
                out["t2vattnvalues_neg"] = self._text_attention(neg.attention, txt_mask_neg)
            else:
                out.update(saliency_scores_neg=None, t2vattnvalues_neg=None)
            out["real_neg_mask"] = real_neg

        out["saliency_scores"] = self.saliency(main.memory_local, main.memory_global)
        moment = self._moment_outputs(frames, frame_pos, src_vid_mask, txt, txt_pos, txt_pad,
                                      dummy_tokens, dummy_pos, targets)  # fmt: skip
        out.update({key: moment[key] for key in MOMENT_KEYS[:6]})
        out["cate_attn_weights"] = main.attention
        out["moment_mask"] = moment["moment_mask"]
        out["txt_mask"] = txt_mask
        out["t2vattnvalues"] = self._text_attention(main.attention, txt_mask)
        out["dummy_tokens"] = dummy_tokens
        out["global_rep_tokens"] = self.global_rep_token
        out["src_vid"] = moment["src_vid"]
        out["video_mask"] = src_vid_mask
        if self.aux_loss:
            out["aux_outputs"] = aux_outputs(outputs_class, outputs_coord)
        return out

    def _encode(
        self,
        frames: Tensor,
        frame_pos: Tensor,
        vid_pad: Tensor,
        ctx: Tensor,
        keys: Tensor,
        key_pos: Tensor,
        key_pad: Tensor,
    ) -> Encoded:
        """One transformer encoding of these frames against ``[dummies | text]`` keys."""
        return self.transformer.encode(
            frames, frame_pos, vid_pad, keys, key_pos, key_pad, ctx,
            self.global_rep_token, self.global_rep_pos, self.num_dummies, self.num_prompts,
        )  # fmt: skip

    def _text_attention(self, attention: Tensor, txt_mask: Tensor) -> Tensor:
        """``t2vattnvalues``: each frame's attention mass on valid text (not dummies), in
        [0, 1]."""
        text = attention[:, :, self.num_dummies :] * txt_mask[:, None, self.num_dummies :]
        return text.sum(2).clamp(0, 1)

    def _moment_outputs(
        self,
        frames: Tensor,
        frame_pos: Tensor,
        src_vid_mask: Tensor,
        txt: Tensor,
        txt_pos: Tensor,
        txt_pad: Tensor,
        dummy_tokens: Tensor,
        dummy_pos: Tensor,
        targets: Mapping[str, Any] | None,
    ) -> dict[str, Tensor | None]:
        """The training-only outputs (:data:`MOMENT_KEYS`; all None without targets): moment
        and non-moment tokens from the moment encoder over the frames inside / outside the GT,
        sentence tokens over the text and over the dummies, the moment encoder's frames against
        the sentence encoder's dummy and text tokens, ``moment_mask`` and the per-frame
        ``src_vid`` (moment frames inside the GT, non-moment frames elsewhere)."""
        if targets is None:
            return dict.fromkeys(MOMENT_KEYS)
        moment = relevant_clips(targets).clamp(0, 1).bool()  # [B, Lv]
        valid = src_vid_mask.bool()
        token, token_pos = self.moment_rep_token, self.moment_rep_pos
        memory_moment, moment_frames = self.transformer.encode_moments(
            frames, frame_pos, valid & moment, token, token_pos
        )
        nmmemory_moment, nmoment_frames = self.transformer.encode_moments(
            frames, frame_pos, valid & ~moment, token, token_pos
        )
        sentence_txt, words = self._sentence(txt, txt_pos, txt_pad)
        no_pad = torch.zeros(dummy_tokens.shape[:2], dtype=torch.bool, device=txt.device)
        sentence_dummy, dummy_words = self._sentence(dummy_tokens, dummy_pos, no_pad)
        words_t = torch.cat((dummy_words, words), dim=1).transpose(1, 2)  # [B, d, nd + Lt]
        inside = moment[..., None]
        values = (
            memory_moment, nmmemory_moment, sentence_txt, sentence_dummy,
            moment_frames @ words_t, nmoment_frames @ words_t, moment,
            moment_frames * inside + nmoment_frames * (~inside).float(),
        )  # fmt: skip
        return dict(zip(MOMENT_KEYS, values, strict=True))

    def _sentence(self, tokens: Tensor, pos: Tensor, pad: Tensor) -> tuple[Tensor, Tensor]:
        """``scls_encoder`` over ``[sentence token | tokens]``: the token's output ``[B, d]``
        and the tokens' ``[B, L, d]``."""
        batch = tokens.shape[0]
        src = torch.cat((self.sent_rep_token.expand(batch, 1, -1), tokens), dim=1)
        src_pos = torch.cat((self.sent_rep_pos.expand(batch, 1, -1), pos), dim=1)
        memory = self.scls_encoder(src, src_pos, F.pad(pad, (1, 0), value=False))
        return memory[:, 0], memory[:, 1:]

    def saliency(self, memory_local: Tensor, memory_global: Tensor) -> Tensor:
        """Frame-vs-global-token similarity: ``[N, Lv, d]``, ``[N, d]`` -> ``[N, Lv]``."""
        frames = self.saliency_proj1(memory_local)
        query = self.saliency_proj2(memory_global).unsqueeze(1)
        return torch.sum(frames * query, dim=-1) / math.sqrt(self.hidden_dim)


def _check_dims(hidden_dim: int, nheads: int, n_input_proj: int) -> None:
    if hidden_dim % HELPER_HEADS:
        raise ValueError(
            f"CG-DETR needs hidden_dim divisible by {HELPER_HEADS}, got {hidden_dim}: its dummy "
            f"and sentence encoders always use {HELPER_HEADS} heads (as in Lighthouse)"
        )
    check_dims(hidden_dim, nheads, n_input_proj)


@dataclass(frozen=True, kw_only=True)
class CGDETRConfig(ContextDETRConfig):
    """The config keys the network reads (see :class:`~.options.DETRConfig`)."""

    model: ClassVar[str] = "cg_detr"

    enc_layers: int = 3
    dec_layers: int = 3
    t2v_layers: int = 2
    dummy_layers: int = 2
    sent_layers: int = 1
    moment_layers: int = 1
    num_dummies: int = 45
    total_prompts: int = 10
    num_prompts: int = 2

    def check(self) -> None:
        check_config(
            self,
            at_least_1=(*AT_LEAST_1, "t2v_layers", "num_dummies", "num_prompts"),
            at_least_0=("enc_layers", "dummy_layers", "sent_layers", "moment_layers"),
        )
        if int(self.total_prompts) < int(self.num_prompts):
            raise ValueError(
                f"num_prompts={self.num_prompts} cannot exceed total_prompts={self.total_prompts}"
            )
        _check_dims(int(self.hidden_dim), int(self.nheads), int(self.n_input_proj))


def build_model(opt: Mapping[str, Any]) -> CGDETR:
    """Build CG-DETR from Lighthouse's flat config keys (an EasyDict or a plain dict)."""
    cfg = CGDETRConfig.from_opt(opt)
    return CGDETR(
        txt_dim=cfg.t_feat_dim,
        vid_dim=cfg.context_dim,
        **detr_arguments(cfg),
        t2v_layers=cfg.t2v_layers,
        dummy_layers=cfg.dummy_layers,
        sent_layers=cfg.sent_layers,
        moment_layers=cfg.moment_layers,
        num_dummies=cfg.num_dummies,
        total_prompts=cfg.total_prompts,
        num_prompts=cfg.num_prompts,
    )


@MODELS.register(name="cg_detr")
def build(opt: Mapping[str, Any]) -> ModelBundle:
    """CG-DETR with its criterion (``cg_detr_criterion.py``) and Lighthouse's evaluation
    post-processing.

    The network's keys are :class:`CGDETRConfig`; the matcher's and losses' are read by
    ``build_cg_detr_criterion``, the clamp by ``build_batch_postprocessor``."""
    refuse_options(opt, "cg_detr")
    return ModelBundle(
        model=build_model(opt),
        criterion=build_cg_detr_criterion(opt),
        postprocessor=build_batch_postprocessor(opt),
    )
