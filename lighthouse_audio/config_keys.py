"""Every config key a YAML layer may set, with what it does here, so a typo is an error.

Lighthouse's YAML tree defines keys for seven models and video datasets; this project reads the
audio ones. Keys Lighthouse knows but this project does not read are accepted and listed in
:data:`IGNORED_KEYS` with the reason, so Lighthouse's own tree (``--config-root``) loads
unchanged while ``lr_dorp: 10`` in a YAML file is refused with its file and a suggestion, as
an unknown ``key=value`` override is.
"""

from __future__ import annotations

__all__ = ["IGNORED_KEYS", "USED_KEYS", "is_known", "known_keys"]

USED_KEYS: dict[str, str] = {
    # run and training loop (engine/train.py)
    "seed": "seeds Python, NumPy and torch (each epoch from seed + epoch)",
    "device": "cpu, cuda, cuda:N or auto",
    "num_workers": "DataLoader workers on CUDA (0 on the CPU)",
    "lr": "AdamW learning rate",
    "lr_drop": "StepLR step size in epochs (gamma 0.1)",
    "wd": "AdamW weight decay",
    "n_epoch": "epochs to train",
    "max_es_cnt": "early stop after this many evaluations without improvement",
    "bsz": "training batch size",
    "eval_bsz": "evaluation batch size",
    "grad_clip": "gradient-norm clip (0: none)",
    "eval_epoch_interval": "evaluate every this many epochs",
    "results_dir": "where run folders go (results_dir/model/dataset/feature)",
    "ckpt_filename": "best checkpoint's file name",
    "train_log_filename": "training log's file name",
    "eval_log_filename": "validation log's file name",
    # data (data/dataset.py, data/limits.py, data/targets.py)
    "max_q_l": "text tokens per query (-1: 100)",
    "max_v_l": "context frames (-1: no limit)",
    "max_a_l": "audio frames read (-1: no limit)",
    "max_windows": "span targets per query",
    "clip_length": "seconds per feature frame",
    "train_path": "training annotations (jsonl)",
    "eval_path": "validation annotations (jsonl)",
    "dset_name": "the dataset plugin (its post-processing clamp)",
    # features (configs/feature/*.yml)
    "ctx_mode": "the model's context inputs (audio_tef: TEF + audio)",
    "v_feat_types": "video features (none for audio)",
    "a_feat_types": "the audio feature's name (its folder)",
    "t_feat_type": "the text feature's name (its folder, + '_text')",
    "v_feat_dim": "TEF/video width (2: the TEF)",
    "a_feat_dim": "audio feature width",
    "t_feat_dim": "text feature width",
    # model (models/qd_detr.py)
    "model_name": "the model plugin",
    "position_embedding": "frame positions: sine",
    "enc_layers": "layers of each encoder",
    "dec_layers": "decoder layers",
    "dim_feedforward": "feed-forward width",
    "hidden_dim": "model width (QD-DETR: 256)",
    "input_dropout": "dropout in the input projections",
    "dropout": "transformer dropout",
    "nheads": "attention heads",
    "num_queries": "span queries",
    "n_input_proj": "input projection blocks (1-3)",
    "aux_loss": "losses on every decoder layer",
    "span_loss_type": "span regression: l1",
    # matcher and criterion (models/matcher.py, models/criterion.py)
    "saliency_margin": "saliency hinge margin",
    "set_cost_span": "matching cost of the L1 span distance",
    "set_cost_giou": "matching cost of the generalised IoU",
    "set_cost_class": "matching cost of the class probability",
    "span_loss_coef": "L1 span loss weight",
    "giou_loss_coef": "gIoU loss weight",
    "label_loss_coef": "classification loss weight",
    "eos_coef": "weight of the background class",
    "lw_saliency": "saliency loss weight",
}

_OTHER_MODEL = "read by another Lighthouse model, not implemented here yet"
IGNORED_KEYS: dict[str, str] = {
    "model_ema": "Lighthouse's exponential moving average of the weights is off in every config",
    "ema_decay": "goes with model_ema",
    "eval_split_name": "Lighthouse names its prediction files with it; runs here name them",
    **{
        key: _OTHER_MODEL
        for key in (
            "CTC_loss_coef",
            "VTC_loss_coef",
            "cross_fusion",
            "dummy_layers",
            "em_iter",
            "event_coef",
            "lr_gamma",
            "lw_distill",
            "lw_ms_align",
            "lw_wattn",
            "moment_layers",
            "mr2hd",
            "n_txt_mu",
            "n_visual_mu",
            "neg_choose_epoch",
            "neg_loss_coef",
            "num_dummies",
            "num_prompts",
            "sent_layers",
            "sim_loss_coef",
            "t2v_layers",
            "total_prompts",
        )
    },  # fmt: skip
}


def known_keys() -> set[str]:
    """Keys a YAML layer may hold (``config.EXTRA_KEYS`` and derived keys come on top)."""
    return set(USED_KEYS) | set(IGNORED_KEYS)


def is_known(key: str) -> bool:
    return key in USED_KEYS or key in IGNORED_KEYS
