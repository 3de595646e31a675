"""Every registered model on the offline real-audio benchmark: same data, features, schedule.

Each model is trained as a seed sweep with the benchmark's settings (``offline_sweeps.py``:
aisfx-minilm 1 s features of 10 s clips simulated from ``../shared/sounds``, 25 epochs,
``bsz=8 lr=3e-4 input_dropout=0.1``, the best epoch by val mAP) and scored on the test split.
Finished sweeps are reused and interrupted ones resumed, so the table can be built over several
sittings; ``--models`` picks some (cheapest first by default: CPU epoch times differ up to 6x).

    python benchmarks/all_models.py --seeds 0,1,2 --concurrent 2
    python benchmarks/all_models.py --models moment_detr eatr --seeds 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from offline_sweeps import finished_rows, prepare, sweep_and_test, table, write_results

HERE = Path(__file__).resolve().parent
# cheapest first (benchmarks/train_epoch.py --models ..., 2 CPU cores: docs/PERFORMANCE.md)
ORDER = ("moment_detr", "qd_detr", "eatr", "tr_detr", "taskweave_mr2hd", "taskweave_hd2mr",
         "cg_detr", "uvcom")  # fmt: skip


def main() -> None:
    from lighthouse_audio.registry import MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=Path, default=HERE.parent.parent / "shared" / "sounds")
    parser.add_argument("--workdir", type=Path, default=HERE / ".cache" / "offline_amr")
    parser.add_argument("--models", nargs="+", choices=MODELS.names(),
                        default=[m for m in ORDER if m in MODELS.names()])  # fmt: skip
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--concurrent", type=int, default=1)
    parser.add_argument("--out", type=Path, help="default: WORKDIR/all-models")
    args = parser.parse_args()

    data = prepare(args.workdir, args.sounds)
    out = args.out or args.workdir / "all-models"
    done: dict[str, dict] = {}
    for model in args.models:
        done[model] = sweep_and_test(data, out, model, args.seeds, args.epochs,
                                     args.concurrent)  # fmt: skip
        # the table holds every finished model, also those another process trained
        rows = {m: done.get(m) or finished_rows(out, m, args.seeds) for m in MODELS.names()}
        ordered = [m for m in ORDER if rows.get(m)] + [
            m for m in rows if rows[m] and m not in ORDER
        ]
        results = {m: rows[m] for m in ordered}
        text = table(results, "model", ("test",))
        write_results(out, "all_models", results, text)  # after each model: partial tables
    print(text)


if __name__ == "__main__":
    main()
