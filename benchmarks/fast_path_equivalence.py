"""Do the plain and the fast training paths train equally well? 3 seeds each, real audio.

The offline real-audio benchmark's data and AM-DETR settings (``offline_sweeps.py``), trained as
a seed sweep once on the plain path (Lighthouse's DataLoader, scipy matching) and once on the
fast path (``resident_data=true assignment=device``); each seed's best checkpoint is scored on
the test split. Prints and writes mean ± sample sd of val and test metrics per path.

    python benchmarks/fast_path_equivalence.py --seeds 0,1,2 --concurrent 2

Same data order and initial weights per seed on both paths; the saliency frame pairs and the
matching's tie-breaks are each path's own draws, so runs differ as two seeds do, and the
question is whether the two paths' seed spreads agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from offline_sweeps import prepare, sweep_and_test, table, write_results

HERE = Path(__file__).resolve().parent
PATHS = {"plain": [], "fast": ["resident_data=true", "assignment=device"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=Path, default=HERE.parent.parent / "shared" / "sounds")
    parser.add_argument("--workdir", type=Path, default=HERE / ".cache" / "offline_amr")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--concurrent", type=int, default=1)
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    parser.add_argument("--out", type=Path, help="default: WORKDIR/equivalence (finished sweeps "
                        "there are reused)")  # fmt: skip
    args = parser.parse_args()

    data = prepare(args.workdir, args.sounds)
    out = args.out or args.workdir / "equivalence"
    results = {
        path: sweep_and_test(
            data, out / path, "qd_detr", args.seeds, args.epochs, args.concurrent, PATHS[path]
        )  # fmt: skip
        for path in args.paths
    }
    text = table(results, "path", ("val", "test"))
    print(text)
    write_results(out, "equivalence", results, text)


if __name__ == "__main__":
    main()
