"""The training loop: AdamW, StepLR or cosine, grad clipping, evaluation each epoch, best-by-mAP.

Lighthouse's loop, made resumable and reproducible. Every epoch reseeds Python, NumPy and torch
from ``(seed, epoch)``, so a run resumed from ``last.ckpt`` continues exactly as an uninterrupted
one would, and two runs with the same seed are identical.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from easydict import EasyDict
from torch import nn
from tqdm import tqdm

from lighthouse_audio.config import save_config
from lighthouse_audio.data.collate import move_to_device
from lighthouse_audio.data.feature_manifest import CONFIG_KEY as FEATURE_MANIFEST_KEY
from lighthouse_audio.data.feature_manifest import read_manifest
from lighthouse_audio.data.loaders import build_dataset, build_feature_stores
from lighthouse_audio.engine import distributed
from lighthouse_audio.engine.batches import EpochData
from lighthouse_audio.engine.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from lighthouse_audio.engine.distributed import Distributed
from lighthouse_audio.engine.lr_schedule import build_lr_scheduler
from lighthouse_audio.engine.optimizer import build_optimizer
from lighthouse_audio.engine.resume import (
    changed_keys,
    check_resumable,
    record_resume,
    tidy_run_folder,
)
from lighthouse_audio.engine.run_dir import first_epoch_done, start_run_folder
from lighthouse_audio.engine.training_config import absolute_paths, check_training_config
from lighthouse_audio.engine.validation import predict
from lighthouse_audio.engine.weight_average import WeightAverage, lighthouse_average
from lighthouse_audio.engine.whole_validation import WholeRecordingValidation, eval_feature_dirs
from lighthouse_audio.evaluation.metrics import eval_submission
from lighthouse_audio.file_io import write_json, write_jsonl
from lighthouse_audio.models.bundle import build_model_bundle
from lighthouse_audio.models.joint_prior import with_joint_prior_heads
from lighthouse_audio.models.training_inputs import dataset_options, training_inputs

TRAIN_LOG_FORMAT = "{time_str} [Epoch] {epoch:03d} [Loss] {loss_str}\n"
EVAL_LOG_FORMAT = "{time_str} [Epoch] {epoch:03d} [Loss] {loss_str} [Metrics] {eval_metrics_str}\n"
SELECTION_METRIC = "MR-full-mAP"  # Lighthouse's; a config may name another (selection_metric)
AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16}
RANK_SEED_STRIDE = 1_000_003  # rank r's dropout and target draws: seed + epoch + r * stride


@dataclass
class TrainState:
    """What a resumed run needs beyond the weights, optimizer and scheduler."""

    epoch: int = -1  # last finished epoch
    best_score: float = 0.0  # Lighthouse starts from 0 and needs a strict improvement
    best_epoch: int = -1
    es_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    grad_clip: float,
    desc: str = "train",
    progress: bool = True,
    amp_dtype: torch.dtype | None = None,
    world: Distributed | None = None,
    after_step: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns the mean of every loss term (weighted total included).

    Loss values stay on the device until the epoch ends (one host sync per epoch, not one per
    step); under data parallelism they are averaged over every rank's batches. ``after_step``
    runs after every optimizer step (the weight average's update). The minimised loss is
    ``criterion.objective(losses)`` where the criterion has one (TaskWeave's task weighting),
    else the ``weight_dict``-weighted sum, as Lighthouse's ``train.py`` does.
    """
    model.train()
    criterion.train()
    weight_dict = criterion.weight_dict
    objective = getattr(criterion, "objective", None)
    sums: dict[str, torch.Tensor] = {}
    num_batches = 0
    for metas, inputs, targets in tqdm(loader, desc=desc, leave=False, disable=not progress):
        inputs, targets = move_to_device(inputs, targets, device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            # a model may read more in training (CG-DETR: vid, targets; models/training_inputs)
            outputs = model(**inputs, **training_inputs(model, metas, targets))
            loss_dict = criterion(outputs, targets)
        if objective is not None:
            loss = objective(loss_dict)
        else:
            loss = sum(loss_dict[k] * weight_dict[k] for k in loss_dict if k in weight_dict)

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step()

        num_batches += 1
        # float64 sums of the float32 values: what adding Python floats gave, without a sync
        for k, v in {"loss_overall": loss, **loss_dict}.items():
            value = v.detach().double()
            sums[k] = sums[k] + value if k in sums else value
    if not sums:
        return {}
    totals = torch.stack(list(sums.values()))
    count = torch.tensor([float(num_batches)], dtype=torch.float64, device=totals.device)
    if world is not None:
        totals, count = world.sum(totals), world.sum(count)
    means = (totals / count.clamp(min=1)).tolist()
    return dict(zip(sums, means, strict=True))


def format_losses(losses: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in losses.items())


def append_line(path: str | Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line)


def validation_truth(val_data: EpochData | WholeRecordingValidation | None) -> list[dict]:
    if val_data is None:
        return []
    if isinstance(val_data, WholeRecordingValidation):
        return val_data.ground_truth
    return [q.to_dict() for q in val_data.dataset.queries]


def validation_predictions(
    val_data: EpochData | WholeRecordingValidation,
    model: nn.Module,
    postprocessor: Callable,
    device: torch.device,
    world: Distributed,
    batch_size: int,
    progress: bool,
) -> list[dict]:
    """Every validation query's prediction line, on every rank. Whole recordings are predicted
    by each rank alike (chunking does not split across ranks); first spans are shared out."""
    if isinstance(val_data, WholeRecordingValidation):
        return val_data.predict(model, progress)
    batches, positions = val_data.evaluation(batch_size)
    mine = predict(model, batches, postprocessor, device, progress)
    return world.gather_in_order(mine, positions)


def lighthouse_checkpoint(model, optimizer, scheduler, epoch: int, opt) -> dict[str, Any]:
    """Exactly Lighthouse's checkpoint layout (see checkpoint.py)."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "opt": opt,
    }


def train(
    opt,
    run_dir: Path,
    device: torch.device,
    resume: Path | None = None,
    init_from: Path | None = None,
    progress: bool = True,
    announce: Callable[[Path], None] | None = None,
    world: Distributed | None = None,
) -> TrainState:
    """Train ``opt.model_name`` on ``opt.train_path``, evaluating on ``opt.eval_path`` every
    ``eval_epoch_interval`` epochs. Writes ``best.ckpt`` (Lighthouse format, when the
    ``selection_metric`` strictly improves), ``last.ckpt`` (resumable, every epoch), logs,
    metrics and predictions.

    Nothing is written until the config, checkpoint and data have been checked; then
    ``announce(run_dir)`` is called once the folder exists. ``resume`` (a run's ``last.ckpt``)
    continues in ``run_dir`` with the run's config: ``opt`` may differ from it only in the keys
    :data:`.resume.SAFE_TO_CHANGE` lists. Under ``torchrun`` (``world``, default: from the
    environment) every rank trains on its share of each batch and rank 0 alone writes
    (``engine/distributed.py``)."""
    world = world or distributed.current()
    run_dir = Path(run_dir)
    check_training_config(opt)
    # The run's own copy: what it records (the device used, log formats, the features' manifest,
    # the joint prior's heads, absolute paths) goes into its checkpoints, not the caller's config.
    opt = with_joint_prior_heads(EasyDict(dict(opt)))
    opt.device = str(device)
    absolute_paths(opt)
    opt.train_log_txt_formatter = TRAIN_LOG_FORMAT
    opt.eval_log_txt_formatter = EVAL_LOG_FORMAT
    progress = progress and world.is_main

    seed_everything(opt.seed)
    model, criterion, postprocessor = build_model_bundle(opt)
    model.to(device)
    criterion.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, opt, device)
    scheduler = build_lr_scheduler(optimizer, opt)

    state = TrainState()
    resumed_opt: Mapping[str, Any] | None = None
    if resume is not None:
        ckpt = load_checkpoint(resume, map_location=device)
        check_resumable(ckpt, resume)
        resumed_opt = ckpt["opt"]
        load_model_weights(model, ckpt["model"], resume)
        if "optimizer" in ckpt:
            optimizer.load_state_dict(ckpt["optimizer"])
        if "lr_scheduler" in ckpt:
            scheduler.load_state_dict(ckpt["lr_scheduler"])
        state = TrainState(**ckpt["train_state"])
    elif init_from is not None:
        ckpt = load_checkpoint(init_from, map_location=device)
        load_model_weights(model, ckpt["model"], init_from)
        world.on_main(lambda: print(f"lighthouse: fine-tuning from weights in {init_from}"))

    # this project's average (every step) or Lighthouse's model_ema (every epoch)
    epoch_average = lighthouse_average(model, opt)
    step_average = WeightAverage(model, opt.weight_average) if opt.get("weight_average") else None
    average, average_key = (
        (epoch_average, "model_ema") if epoch_average else (step_average, "weight_average")
    )
    if average is not None and resume is not None and average_key in ckpt:
        average.load_state_dict(ckpt[average_key])
    eval_model = average.model if average is not None else model  # what validation scores

    stores = build_feature_stores(opt)
    manifest = read_manifest(Path(opt["a_feat_dirs"][0]))
    if manifest is not None:  # the checkpoint then says how its features were made
        opt[FEATURE_MANIFEST_KEY] = manifest.to_dict()
    changes = changed_keys(resumed_opt, opt) if resumed_opt is not None else {}
    num_workers = int(opt.get("num_workers", 0)) if device.type == "cuda" else 0
    data_options = dataset_options(model)  # how the model's targets are drawn (CG-DETR's)
    train_data = EpochData(build_dataset(opt, opt.train_path, stores, **data_options), opt,
                           device, world, num_workers)  # fmt: skip
    val_data: EpochData | WholeRecordingValidation | None = None
    if opt.get("eval_path") and opt.get("eval_whole_recordings"):
        val_data = WholeRecordingValidation(opt, postprocessor, device)
    elif opt.get("eval_path"):
        val_stores = build_feature_stores(opt, *eval_feature_dirs(opt)) if opt.get(
            "eval_features_root") else stores  # fmt: skip
        val_data = EpochData(build_dataset(opt, opt.eval_path, val_stores, **data_options), opt,
                             device, world, num_workers)  # fmt: skip
    ground_truth = validation_truth(val_data)
    step_model = world.wrap(model, device)
    if opt.get("compile_model"):
        step_model = torch.compile(step_model)
    amp_dtype = AMP_DTYPES[str(opt.get("amp", "off"))]

    # Only now, with config, checkpoint and data validated, does the run folder get written.
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            tidy_run_folder(run_dir, state.epoch, [opt.train_log_filepath, opt.eval_log_filepath])
            record_resume(run_dir, resume, state.epoch, opt.device, changes)
            print(f"lighthouse: resuming from {resume} after epoch {state.epoch}")
        if resume is None:  # a new run: its folder counts as unused until an epoch ends
            start_run_folder(run_dir, [opt.train_log_filepath, opt.eval_log_filepath])
        if resume is None or not (run_dir / "config.yaml").exists():  # once: the run's start
            save_config(opt, run_dir / "config.yaml")
        if announce is not None:
            announce(run_dir)
        if world.enabled:
            print(
                f"lighthouse: data-parallel over {world.world_size} processes, effective batch "
                f"{world.world_size} x {opt.bsz} = {world.world_size * opt.bsz} queries, lr "
                f"{opt.lr} as given (linear scaling would be {opt.lr * world.world_size:g})"
            )

    selection_metric = opt.get("selection_metric") or SELECTION_METRIC
    epochs = tqdm(range(state.epoch + 1, opt.n_epoch), desc="epochs", disable=not progress)
    for epoch in epochs:
        # Models whose forward depends on the epoch (TaskWeave) learn it, for training and for
        # this epoch's validation, as Lighthouse passes the epoch to both.
        for module in {id(m): m for m in (model, eval_model)}.values():
            if hasattr(module, "set_epoch"):
                module.set_epoch(epoch)
        # Ranks share the data order (drawn from seed + epoch) but not their dropout draws.
        seed_everything(opt.seed + epoch + RANK_SEED_STRIDE * world.rank)
        losses = train_one_epoch(
            step_model, criterion, train_data.training(opt.bsz, opt.seed + epoch), optimizer,
            device, opt.grad_clip, desc=f"epoch {epoch}", progress=progress,
            amp_dtype=amp_dtype, world=world,
            after_step=step_average.update if step_average is not None else None,
        )  # fmt: skip
        scheduler.step()
        if epoch_average is not None:  # Lighthouse: after the learning-rate step
            epoch_average.update()
        time_str = time.strftime("%Y_%m_%d_%H_%M_%S")
        if world.is_main:
            line = TRAIN_LOG_FORMAT.format(time_str=time_str, epoch=epoch,
                                           loss_str=format_losses(losses))  # fmt: skip
            append_line(opt.train_log_filepath, line)
        record: dict[str, Any] = {"epoch": epoch, "losses": losses}

        if val_data is not None and (epoch + 1) % opt.eval_epoch_interval == 0:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                predictions = validation_predictions(
                    val_data, eval_model, postprocessor, device, world, opt.eval_bsz, progress
                )
            metrics = eval_submission(predictions, ground_truth)  # the same on every rank
            score = metrics["brief"][selection_metric]
            record["metrics"] = metrics["brief"]
            if world.is_main:
                append_line(
                    opt.eval_log_filepath,
                    EVAL_LOG_FORMAT.format(
                        time_str=time_str, epoch=epoch, loss_str=format_losses(losses),
                        eval_metrics_str=json.dumps(metrics["brief"]),
                    ),
                )  # fmt: skip
            if score > state.best_score:
                state.best_score, state.best_epoch, state.es_count = score, epoch, 0
                if world.is_main:
                    save_checkpoint(
                        Path(opt.ckpt_filepath),
                        lighthouse_checkpoint(eval_model, optimizer, scheduler, epoch, opt),
                    )
                    write_json(metrics, run_dir / "best_val_metrics.json")
                    write_jsonl(predictions, run_dir / "best_val_preds.jsonl")
            else:
                state.es_count += 1
            epochs.set_postfix({selection_metric: score, "best": state.best_score})

        state.epoch = epoch
        state.history.append(record)
        if world.is_main:
            last = lighthouse_checkpoint(model, optimizer, scheduler, epoch, opt)
            last["train_state"] = vars(state)
            if average is not None:  # the raw weights resume training, the average goes on
                last[average_key] = average.state_dict()
            save_checkpoint(run_dir / "last.ckpt", last)
            first_epoch_done(run_dir)
        if opt.max_es_cnt != -1 and state.es_count > opt.max_es_cnt:
            world.on_main(lambda: print(
                f"lighthouse: early stop after {state.es_count} epochs without improvement"
            ))  # fmt: skip
            break
    return state
