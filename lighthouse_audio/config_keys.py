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
    "model_ema": "Lighthouse's per-epoch moving average of the weights, validated and kept in "
    "best.ckpt (on in its TaskWeave configs; engine/weight_average.py)",
    "ema_decay": "its decay per epoch (no warm-up)",
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
    # CG-DETR (models/cg_detr.py, models/cg_detr_criterion.py)
    "t2v_layers": "CG-DETR: text-to-audio layers",
    "dummy_layers": "CG-DETR: layers of the dummy-token encoder",
    "sent_layers": "CG-DETR: layers of the sentence-token encoder",
    "moment_layers": "CG-DETR: layers of the moment-token encoder",
    "num_dummies": "CG-DETR: dummy tokens prepended to the text",
    "total_prompts": "CG-DETR: learned prompts for the global token",
    "num_prompts": "CG-DETR: prompts combined into each global token",
    "lw_wattn": "CG-DETR: weight of the attention part of the saliency loss",
    "lw_ms_align": "CG-DETR: moment-sentence alignment loss weight",
    "lw_distill": "CG-DETR: attention distillation and dummy orthogonality loss weight",
    # TaskWeave (models/taskweave.py)
    "mr2hd": "TaskWeave: MR2HD (true) or HD2MR (false) variant",
    # TR-DETR (models/tr_detr_criterion.py)
    "VTC_loss_coef": "TR-DETR: video-text contrastive loss weight",
    "CTC_loss_coef": "TR-DETR: clip-text contrastive loss weight",
    # EaTR (models/eatr_criterion.py)
    "event_coef": "EaTR: event loss weight, times the span and gIoU weights",
    # UVCOM (models/uvcom.py, models/uvcom_criterion.py)
    "n_txt_mu": "UVCOM: EM centres fitted to the text",
    "n_visual_mu": "UVCOM: EM centres fitted to the audio frames",
    "em_iter": "UVCOM: EM iterations",
    "sim_loss_coef": "UVCOM: clip-text similarity loss weight (0: no loss_sim)",
    "neg_choose_epoch": "UVCOM: epoch from which negatives are the least similar texts "
    "(never reached: training passes no epoch, as Lighthouse's)",
    "cross_fusion": "UVCOM: cross-fusion ablation; must be false (Lighthouse's value)",
}

IGNORED_KEYS: dict[str, str] = {
    "eval_split_name": "Lighthouse names its prediction files with it; runs here name them",
    # in Lighthouse's UVCOM config but read by none of its code either
    "lr_gamma": "UVCOM's config carries it; Lighthouse's StepLR always uses gamma 0.1",
    "neg_loss_coef": "UVCOM's config carries it; no Lighthouse loss reads it",
}


def known_keys() -> set[str]:
    """Keys a YAML layer may hold (``config.EXTRA_KEYS`` and derived keys come on top)."""
    return set(USED_KEYS) | set(IGNORED_KEYS)


def is_known(key: str) -> bool:
    return key in USED_KEYS or key in IGNORED_KEYS
