"""``lighthouse infer``: run a trained checkpoint on an annotated split of precomputed features."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer", help="predict moments for a jsonl split with a trained checkpoint"
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--jsonl", type=Path, required=True, help="Lighthouse-format annotations")
    parser.add_argument(
        "--features", type=Path, required=True,
        help="folder holding <a_feat_types>/{vid}.npz and <t_feat_type>_text/qid{qid}.npz",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="predictions jsonl to write")
    parser.add_argument("--eval", action="store_true", help="also score against the jsonl windows")
    parser.add_argument(
        "--save-metrics", type=Path, help="metrics json (default: <out>.metrics.json)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, help="default: the checkpoint's eval_bsz")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lighthouse_audio.data.loaders import build_dataset, build_feature_stores, build_loader
    from lighthouse_audio.engine.checkpoint import load_checkpoint, load_model_weights
    from lighthouse_audio.engine.evaluate import predict
    from lighthouse_audio.engine.train import resolve_device, write_jsonl
    from lighthouse_audio.evaluation.io import save_json
    from lighthouse_audio.evaluation.metrics import eval_submission
    from lighthouse_audio.models.bundle import build_model_bundle

    ckpt = load_checkpoint(args.checkpoint)
    if "opt" not in ckpt:
        raise ValueError(
            f"{args.checkpoint}: checkpoint carries no 'opt' config to rebuild the model"
        )
    opt = ckpt["opt"]
    device = resolve_device(args.device)
    model, _, postprocessor = build_model_bundle(opt)
    load_model_weights(model, ckpt["model"], args.checkpoint)
    model.to(device)

    stores = build_feature_stores(
        opt,
        audio_dir=args.features / str(opt.a_feat_types),
        text_dir=args.features / f"{opt.t_feat_type}_text",
    )
    dataset = build_dataset(opt, args.jsonl, stores, load_labels=False, require_windows=args.eval)
    loader = build_loader(dataset, args.batch_size or int(opt.eval_bsz), shuffle=False)
    predictions = predict(model, loader, postprocessor, device, progress=not args.no_progress)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(predictions, args.out)
    print(f"lighthouse: wrote {len(predictions)} predictions to {args.out}")
    if args.eval:
        ground_truth = [q.to_dict() for q in dataset.queries]
        metrics = eval_submission(predictions, ground_truth)
        print(json.dumps(metrics["brief"], indent=4))
        save_path = args.save_metrics or args.out.with_suffix(".metrics.json")
        save_json(metrics, save_path)
        print(f"lighthouse: wrote metrics to {save_path}")
    return 0
