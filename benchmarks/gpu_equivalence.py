"""The fast training path on a device against the plain path on the CPU, batch by batch.

Same weights, same queries: the plain path (``DataLoader`` + ``collate`` + scipy matching, on
the CPU) and the fast path (device-resident split + matching solved on the device, on
``--device``) must give the same model inputs, the same matched cost (the same matches, but
where costs tie exactly) and every loss term to float32 rounding. The saliency frame pairs are
random draws on each path, so the fast batch is given the plain batch's pairs here (their
distribution is tested in ``tests/data/test_device_split.py``). Dropout is off (eval mode):
its draws differ by device.

    python benchmarks/gpu_equivalence.py --device cuda --json equivalence.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_epoch import in_memory_split  # noqa: E402

from lighthouse_audio.config import load_config  # noqa: E402
from lighthouse_audio.engine.batches import EpochData  # noqa: E402
from lighthouse_audio.engine.distributed import Distributed  # noqa: E402
from lighthouse_audio.models.bundle import build_model_bundle  # noqa: E402
from lighthouse_audio.models.matcher import pad_target_spans  # noqa: E402

REL_TOL = 1e-4  # float32 on two devices: different kernels, different summation orders


def matched_cost(costs: torch.Tensor, matches) -> float:
    """Total cost of per-sample matches ``(pred_idx, tgt_idx)`` in a ``[B, Q, N]`` cost."""
    return sum(float(costs[b, i.cpu(), j.cpu()].sum()) for b, (i, j) in enumerate(matches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    cpu = torch.device("cpu")

    report: dict = {"device": str(device), "batches": []}
    failures = []
    # one window per query (Clotho-Moment), and 1-5 windows (CASTELLA-like, max_windows 5)
    for name, extra in (("clotho-moment", []), ("castella-like", [])):
        plain_opt = load_config("qd_detr", "clotho-moment", "clap", extra)
        fast_opt = load_config("qd_detr", "clotho-moment", "clap",
                               [*extra, "resident_data=true", "assignment=device"])  # fmt: skip
        windows = (1, 1) if name == "clotho-moment" else (1, 5)
        dataset = in_memory_split(args.batches * plain_opt.bsz, 3, 0, 60, 768, plain_opt, windows)
        torch.manual_seed(0)
        plain_model, plain_criterion, _ = build_model_bundle(plain_opt)
        fast_model, fast_criterion, _ = build_model_bundle(fast_opt)
        fast_model.load_state_dict(plain_model.state_dict())
        fast_model.to(device).eval()
        plain_model.eval()
        fast_criterion.to(device)
        world = Distributed()
        plain = EpochData(dataset, plain_opt, cpu, world).training(plain_opt.bsz, seed=11)
        fast = EpochData(dataset, fast_opt, device, world).training(fast_opt.bsz, seed=11)
        for step, ((_, p_in, p_tgt), (_, f_in, f_tgt)) in enumerate(zip(plain, fast, strict=True)):
            for key in p_in:
                if not torch.equal(p_in[key], f_in[key].cpu()):
                    failures.append(f"{name} batch {step}: input {key} differs")
            for key in ("saliency_pos_labels", "saliency_neg_labels"):
                f_tgt[key] = p_tgt[key].to(device)
            for a, b in zip(p_tgt["span_labels"], f_tgt["span_labels"], strict=True):
                if not torch.equal(a["spans"], b["spans"].cpu()):
                    failures.append(f"{name} batch {step}: target spans differ")
            with torch.no_grad():
                plain_out = plain_model(**p_in)
                want = plain_criterion(plain_out, p_tgt)
                got = fast_criterion(fast_model(**f_in), f_tgt)
            worst = max(abs(float(got[k]) - float(v)) / max(abs(float(v)), 1e-6)
                        for k, v in want.items())  # fmt: skip
            # Exactly tied costs (an untrained model gives queries alike spans) may be broken
            # differently: what must agree is the optimum, i.e. the matched cost.
            costs = plain_criterion.matcher.cost_matrix(
                plain_out["pred_logits"], plain_out["pred_spans"],
                pad_target_spans([t["spans"] for t in p_tgt["span_labels"]])[0],
            )  # fmt: skip
            plain_cost = matched_cost(costs, plain_criterion.last_matches.main)
            fast_cost = matched_cost(costs, fast_criterion.last_matches.main)
            same_matches = all(
                torch.equal(a[0], b[0].cpu()) and torch.equal(a[1], b[1].cpu())
                for a, b in zip(plain_criterion.last_matches.main,
                                fast_criterion.last_matches.main, strict=True)
            )  # fmt: skip
            report["batches"].append({"data": name, "batch": step, "worst_rel_loss_diff": worst,
                                      "same_matches": same_matches, "matched_cost":
                                      [plain_cost, fast_cost]})  # fmt: skip
            if not math.isfinite(worst) or worst > REL_TOL:
                failures.append(f"{name} batch {step}: loss differs by {worst:.2e} (relative)")
            if not math.isclose(plain_cost, fast_cost, rel_tol=REL_TOL, abs_tol=1e-4):
                failures.append(f"{name} batch {step}: matched cost {fast_cost} != {plain_cost}")
    report["failures"] = failures
    report["compared_batches"] = len(report["batches"])
    print(json.dumps({k: v for k, v in report.items() if k != "batches"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if failures or not report["batches"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
