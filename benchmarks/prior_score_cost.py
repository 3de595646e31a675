"""Cost of ``prior_score_mix`` and ``prior_refine`` in post-processing: one batch of model outputs
to ranked lines, with the confidence alone (mix 0), mixed with the joint prior, and mixed with
window bounds redrawn from it (docs/PERFORMANCE.md).

    python benchmarks/prior_score_cost.py --batch 32 --queries 10 --frames 60
"""

from __future__ import annotations

import argparse
import time

import torch

from lighthouse_audio.models.postprocess import outputs_to_predictions
from lighthouse_audio.models.prior_score import PRIOR_SIMILARITY_KEY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.manual_seed(0)
    b, q, n = args.batch, args.queries, args.frames
    outputs = {
        "pred_logits": torch.randn(b, q, 2),
        "pred_spans": torch.rand(b, q, 2) * 0.5 + 0.1,
        "video_mask": torch.ones(b, n),
        PRIOR_SIMILARITY_KEY: torch.rand(b, n) * 2 - 1,
    }
    metas = [{"qid": i, "query": "q", "vid": "v", "duration": float(n)} for i in range(b)]
    times = {}
    for mix, refine in ((0.0, 0.0), (0.5, 0.0), (0.5, 0.4)):
        outputs_to_predictions(outputs, metas, mix, 1.0, refine)  # warm-up
        started = time.perf_counter()
        for _ in range(args.repeats):
            outputs_to_predictions(outputs, metas, mix, 1.0, refine)
        times[mix, refine] = (time.perf_counter() - started) / args.repeats * 1e3
        print(f"mix {mix:g}, refine {refine:g}: {times[mix, refine]:.3f} ms per batch of {b}")
    base = times[0.0, 0.0]
    print(f"ratio mixed / confidence only: {times[0.5, 0.0] / base:.2f}x")
    print(f"ratio mixed and redrawn / confidence only: {times[0.5, 0.4] / base:.2f}x")


if __name__ == "__main__":
    main()
