"""Table I (moment retrieval) and Table II (zero-shot SED) as rows, Markdown and CSV.

Table I has one row per (method, encoder, window, source kind) and, per dataset split, the five
columns of ``MR_METRICS``; paper rows keep their "paper (reported)" label in the Source column.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from lighthouse_audio.report.sources import MR_METRICS, MREntry, SEDEntry

OURS = "measured"


def dataset_groups(entries: Sequence[MREntry]) -> list[str]:
    """Column groups of Table I, ``"dataset (split)"``, in order of first appearance."""
    groups: list[str] = []
    for entry in entries:
        group = f"{entry.dataset} ({entry.split})"
        if group not in groups:
            groups.append(group)
    return groups


def table1_rows(entries: Sequence[MREntry]) -> tuple[list[str], list[list[str | float | None]]]:
    """``(header, rows)`` of Table I; a missing value is ``None``.

    Raises:
        ValueError: two entries give the same cell (same row and dataset split), naming both.
    """
    groups = dataset_groups(entries)
    header = ["Method", "Encoder", "Window", "Source"]
    header += [f"{group} {metric}" for group in groups for metric in MR_METRICS]
    rows: dict[tuple[str, str, str, str], dict[str, MREntry]] = {}
    for entry in entries:
        kind = entry.source if entry.source == "paper (reported)" else OURS
        cells = rows.setdefault((entry.method, entry.encoder, entry.window, kind), {})
        group = f"{entry.dataset} ({entry.split})"
        if group in cells:
            raise ValueError(
                f"two results for {entry.method} {entry.encoder} {entry.window} on {group}: "
                f"{cells[group].source} and {entry.source}"
            )
        cells[group] = entry
    table: list[list[str | float | None]] = []
    for key, cells in rows.items():
        row: list[str | float | None] = list(key)
        for group in groups:
            row += [cells[group].metrics.get(m) if group in cells else None for m in MR_METRICS]
        table.append(row)
    return header, table


def table2_rows(entries: Sequence[SEDEntry]) -> tuple[list[str], list[list[str | float | None]]]:
    """``(header, rows)`` of Table II: scores at the given and at the dev-tuned threshold."""
    header = ["Method", "Source", "Threshold", "Precision", "Recall", "F1"]
    header += ["Tuned threshold", "Precision (tuned)", "Recall (tuned)", "F1 (tuned)"]
    table: list[list[str | float | None]] = []
    for entry in entries:
        kind = entry.source if entry.source == "paper (reported)" else OURS
        tuned = entry.tuned_scores or {}
        threshold = None if math.isnan(entry.threshold) else entry.threshold
        table.append(
            [entry.method, kind, threshold]
            + [entry.scores[k] for k in ("precision", "recall", "f1")]
            + [entry.tuned_threshold]
            + [tuned.get(k) for k in ("precision", "recall", "f1")]
        )
    return header, table


def _cell(value: str | float | None, decimals: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def to_markdown(header: Sequence[str], rows: Sequence[Sequence[str | float | None]]) -> str:
    """A GitHub-flavoured Markdown table; numbers with 2 decimals, missing values as "–"."""
    threshold_columns = {i for i, name in enumerate(header) if "hreshold" in name}
    lines = ["| " + " | ".join(header) + " |"]
    numeric = [  # right-aligned: columns whose values are all numbers (or missing)
        all(row[i] is None or isinstance(row[i], int | float) for row in rows)
        for i in range(len(header))
    ]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for row in rows:
        cells = [_cell(v, 3 if i in threshold_columns else 2) for i, v in enumerate(row)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(header: Sequence[str], rows: Sequence[Sequence[str | float | None]]) -> str:
    """CSV with full-precision numbers and empty cells for missing values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue()
