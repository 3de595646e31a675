"""The demo's model steps: train AM-DETR on the simulated train split, test it on the test split."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lighthouse_audio.demo.config import TRAIN_DEFAULTS, DemoConfig
from lighthouse_audio.demo.data import DemoData
from lighthouse_audio.demo.settings import DATASET, FEATURE, MODEL


@dataclass
class DemoResult:
    run_dir: Path
    checkpoint: Path
    metrics_path: Path
    summary_path: Path
    picture_path: Path
    predictions_path: Path
    test_jsonl: Path
    features_dir: Path
    metrics: dict[str, float]
    chance: dict[str, dict[str, float]]
    mix_val_mAP: dict[str, float] = field(default_factory=dict)  # with a joint prior
    refine_val_mAP: dict[str, float] = field(default_factory=dict)  # likewise
    prior_refine: float = 0.0
    # val mAP of each candidate checkpoint (its best mix) and the one kept
    candidates_val_mAP: dict[str, float] = field(default_factory=dict)
    kept: str = "best epoch"
    data: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def train_model(
    cfg: DemoConfig,
    workdir: Path,
    features_root: Path,
    annotations: dict[str, Path],
    extra: Sequence[str] = (),
    val_recordings: tuple[Path, Path] | None = None,
) -> tuple[Any, Path, Any]:
    """Train AM-DETR on ``annotations['train']``; the epoch is picked on ``annotations['val']``,
    or on ``val_recordings`` = (annotations, features root) predicted whole in chunks."""
    from lighthouse_audio.config import load_config
    from lighthouse_audio.devices import resolve_device
    from lighthouse_audio.engine.run_dir import claim_run_dir
    from lighthouse_audio.engine.train import train

    frames = int(np.ceil(cfg.clip_length)) + 1  # 1 s windows, FRAMES="none": N frames for N s
    device = resolve_device(cfg.device)  # the config records the device actually used
    overrides = [
        f"train_path={annotations['train']}",
        f"features_root={features_root}",
        *validation_overrides(annotations, val_recordings),
        f"results_dir={workdir / 'results'}",
        f"device={device}",
        f"n_epoch={cfg.epochs}",
        f"seed={cfg.seed}",
        f"max_v_l={frames}",
        f"max_a_l={frames}",
        "num_workers=0",
        *TRAIN_DEFAULTS,
        *cfg.recipe,
        *extra,
        *cfg.train_overrides,
    ]
    opt = load_config(MODEL, DATASET, FEATURE, overrides)
    run_dir = claim_run_dir(opt)
    print(f"  run folder {run_dir}")
    state = train(opt, run_dir, device, progress=cfg.progress)
    print(f"  best validation mAP {state.best_score:.2f} at epoch {state.best_epoch}")
    return opt, run_dir, state


def validation_overrides(
    annotations: dict[str, Path], val_recordings: tuple[Path, Path] | None
) -> list[str]:
    if val_recordings is None:
        return [f"eval_path={annotations['val']}"]
    jsonl, features_root = val_recordings
    return [f"eval_path={jsonl}", f"eval_features_root={features_root}",
            "eval_whole_recordings=true"]  # fmt: skip


def test_model(
    cfg: DemoConfig, opt: Any, run_dir: Path, data: DemoData, log: Callable[[str], None]
) -> DemoResult:
    """Test on ``data.test['test']``, whole recordings (chunked where longer than the model's
    span), the checkpoint that does best on the 60 s val recordings ``data.test['val']``.

    The candidates are the best epoch's weights (picked on the val recordings, or on short val
    clips) and, with a weight average, the average as training ended (``final_average.ckpt``):
    on a few hundred val queries the epoch pick can land early (docs/RESULTS.md). With a joint
    prior the score mix is tuned with them, then, for the weights and mix kept, the ratio that
    redraws window bounds from the prior (``prior_refine``, ``REFINE_RATIOS``; 0 keeps the
    model's). Any choice but the best epoch at mix 0 and ratio 0 is written into ``tuned.ckpt``
    (those weights with those settings), which becomes the checkpoint the demo leaves."""
    from lighthouse_audio.demo.chance import chance_metrics
    from lighthouse_audio.demo.picture import write_moment_picture
    from lighthouse_audio.evaluation.metrics import eval_submission
    from lighthouse_audio.file_io import write_json, write_jsonl
    from lighthouse_audio.prediction.model import load_model
    from lighthouse_audio.prediction.split import predict_split

    checkpoint = run_dir / "best.ckpt"
    if not checkpoint.is_file():  # validation mAP never rose above 0: no best.ckpt
        log(f"{checkpoint} was never written (validation mAP stayed 0); testing last.ckpt")
        checkpoint = run_dir / "last.ckpt"
    device = str(opt.device)

    def score(loaded: Any, split: str) -> tuple[list[dict], list[dict], dict[str, Any]]:
        predictions, truth = predict_split(
            loaded, data.test[split], data.test_features / DATASET, require_windows=True,
            progress=cfg.progress,
        )  # fmt: skip
        return predictions, truth, eval_submission(predictions, truth)

    from lighthouse_audio.models.prior_refine import REFINE_RATIOS
    from lighthouse_audio.models.prior_score import SCORE_MIXES

    candidates = {"best epoch": checkpoint}
    if (final := write_final_average(run_dir)) is not None:
        candidates["final average"] = final
    mixes = SCORE_MIXES if cfg.joint_prior else (0.0,)
    val_map: dict[str, dict[str, float]] = {}
    for name, path in candidates.items():
        val_map[name] = {}
        for mix in mixes:
            loaded = load_model(
                path, device=device, prior_score_mix=mix if cfg.joint_prior else None
            )
            val_map[name][f"{mix:g}"] = score(loaded, "val")[2]["brief"]["MR-full-mAP"]
    # first on ties: the best epoch before the average, the lower mix before the higher
    kept, best_mix = max(((name, mix) for name in candidates for mix in mixes),
                         key=lambda c: val_map[c[0]][f"{c[1]:g}"])  # fmt: skip
    mix_val_map = val_map[kept] if cfg.joint_prior else {}
    print(f"  kept the {kept} at score mix {best_mix:g} (60 s val mAP: {val_map})")
    refine_val_map = {f"{0.0:g}": val_map[kept][f"{best_mix:g}"]}
    for ratio in REFINE_RATIOS[1:] if cfg.joint_prior else ():
        loaded = load_model(
            candidates[kept], device=device, prior_score_mix=best_mix, prior_refine=ratio
        )
        refine_val_map[f"{ratio:g}"] = score(loaded, "val")[2]["brief"]["MR-full-mAP"]
    # first on ties: the model's own bounds
    best_refine = max((float(r) for r in refine_val_map), key=lambda r: refine_val_map[f"{r:g}"])
    if cfg.joint_prior:
        print(f"  window bounds redrawn from the prior at {best_refine:g} "
              f"(60 s val mAP by ratio: {refine_val_map})")  # fmt: skip
    checkpoint = candidates[kept]
    if best_mix or best_refine or kept != "best epoch":
        checkpoint = write_tuned_checkpoint(
            checkpoint, best_mix, run_dir / "tuned.ckpt", prior_refine=best_refine
        )
    predictions, ground_truth, metrics = score(load_model(checkpoint, device=device), "test")
    predictions_path = run_dir / "test_preds.jsonl"
    write_jsonl(predictions, predictions_path)
    metrics_path = run_dir / "test_metrics.json"
    write_json(metrics, metrics_path)

    train_lines = [json.loads(x) for x in data.train["train"].read_text().splitlines() if x]
    lengths = [e - s for q in train_lines for s, e in q["relevant_windows"] if e > s]
    chance = {
        "random windows": chance_metrics(ground_truth, seed=cfg.seed),
        "random windows, train lengths": chance_metrics(ground_truth, cfg.seed, lengths=lengths),
    }

    # The test recording with the most queries (ties: the first by name) makes the picture.
    per_vid: dict[str, list[dict]] = {}
    by_qid = {p["qid"]: p for p in predictions}
    for q in ground_truth:
        per_vid.setdefault(q["vid"], []).append({**q, **by_qid[q["qid"]]})
    vid = min(per_vid, key=lambda v: (-len(per_vid[v]), v))
    picture = write_moment_picture(
        data.audio_dir / f"{vid}.wav",
        sorted(per_vid[vid], key=lambda q: q["relevant_windows"][0][0]),
        run_dir / "test_example.png",
        title=f"{vid} (test)\ntrue moments (green) and AM-DETR's top prediction (orange)",
    )
    return DemoResult(
        run_dir=run_dir,
        checkpoint=checkpoint,
        metrics_path=metrics_path,
        summary_path=run_dir / "demo_summary.json",
        picture_path=picture,
        predictions_path=predictions_path,
        test_jsonl=data.test["test"],
        features_dir=data.test_features / DATASET,
        metrics=metrics["brief"],
        chance=chance,
        mix_val_mAP=mix_val_map,
        refine_val_mAP=refine_val_map if cfg.joint_prior else {},
        prior_refine=best_refine,
        candidates_val_mAP={name: max(v.values()) for name, v in val_map.items()},
        kept=kept,
    )


def write_final_average(run_dir: Path) -> Path | None:
    """The weight average as training ended (kept in ``last.ckpt`` for resuming) as a checkpoint
    of its own, ``final_average.ckpt``; None when the run kept no average."""
    from lighthouse_audio.engine.checkpoint import load_checkpoint, save_checkpoint

    last = run_dir / "last.ckpt"
    if not last.is_file():
        return None
    ckpt = load_checkpoint(last)
    if "weight_average" not in ckpt:
        return None
    target = run_dir / "final_average.ckpt"
    save_checkpoint(target, {"model": ckpt["weight_average"]["model"], "opt": ckpt["opt"],
                             "epoch": ckpt["epoch"]})  # fmt: skip
    return target


def write_tuned_checkpoint(
    source: Path, mix: float, target: Path, prior_refine: float = 0.0
) -> Path:
    """``source`` with ``prior_score_mix=mix`` and ``prior_refine`` in its config, written
    atomically to ``target``."""
    from lighthouse_audio.engine.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(source)
    ckpt["opt"]["prior_score_mix"] = mix
    ckpt["opt"]["prior_refine"] = prior_refine
    save_checkpoint(target, ckpt)
    return target
