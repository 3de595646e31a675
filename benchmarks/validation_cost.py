"""What validating on whole recordings costs per epoch (``eval_whole_recordings``), against
Lighthouse's first-span validation and against short val clips, with one checkpoint.

    python benchmarks/validation_cost.py --checkpoint RUN/best.ckpt \\
        --long DATA/annotations/val.jsonl DATA/features/custom \\
        --clips DATA/train10s-*/annotations/val.jsonl DATA/train10s-*/features/custom
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    import torch

    from lighthouse_audio.prediction.model import load_model
    from lighthouse_audio.prediction.split import predict_dataset, split_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--long", type=Path, nargs=2, required=True, metavar=("JSONL", "FEATS"))
    parser.add_argument("--clips", type=Path, nargs=2, metavar=("JSONL", "FEATS"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.checkpoint)
    cases = [("long recordings, whole (chunked)", *args.long, True),
             ("long recordings, first span (Lighthouse)", *args.long, False)]  # fmt: skip
    if args.clips:
        cases.append(("short val clips", *args.clips, False))
    print("| validation set | queries | CPU s per pass | wall s per pass |\n|---|---:|---:|---:|")
    for name, jsonl, features, whole in cases:
        dataset = split_dataset(loaded.opt, jsonl, features, whole_recordings=whole,
                                require_windows=True)  # fmt: skip
        predict_dataset(loaded, dataset, truncate=not whole, progress=False, announce=False)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.repeats):
            predict_dataset(loaded, dataset, truncate=not whole, progress=False, announce=False)
        wall = (time.perf_counter() - wall) / args.repeats
        cpu = (time.process_time() - cpu) / args.repeats
        print(f"| {name} | {len(dataset)} | {cpu:.2f} | {wall:.2f} |")


if __name__ == "__main__":
    main()
