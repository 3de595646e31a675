"""The numbers published in the AMR paper, as reference rows labelled "paper (reported)".

They live in ``paper_results.json`` next to this module, with their source. A row is only there
if it was copied from the paper; nothing is estimated or filled in.
"""

from __future__ import annotations

import json
from pathlib import Path

from lighthouse_audio.report.sources import MREntry, SEDEntry

PAPER_RESULTS = Path(__file__).with_name("paper_results.json")
PAPER_LABEL = "paper (reported)"


def load_paper_results(path: Path = PAPER_RESULTS) -> tuple[list[MREntry], list[SEDEntry]]:
    """Table I and Table II reference entries of a paper-results file (empty lists: none)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such paper-results file: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    mr = [
        MREntry(
            method=row["method"],
            dataset=row["dataset"],
            split=row.get("split", "test"),
            metrics={key: float(value) for key, value in row["metrics"].items()},
            encoder=row.get("encoder", ""),
            window=row.get("window", ""),
            source=PAPER_LABEL,
        )
        for row in data.get("table_1", [])
    ]
    sed = [
        SEDEntry(
            method=row["method"],
            threshold=float(row["threshold"]) if row.get("threshold") is not None else float("nan"),
            scores={key: float(row[key]) for key in ("precision", "recall", "f1")},
            tuned_threshold=row.get("tuned_threshold"),
            tuned_scores=row.get("tuned"),
            source=PAPER_LABEL,
        )
        for row in data.get("table_2", [])
    ]
    return mr, sed
