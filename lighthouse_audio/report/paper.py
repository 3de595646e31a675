"""The numbers published in the AMR paper, as reference rows labelled "paper (reported)".

They live in ``paper_results.json`` next to this module, with their source. A row is only there
if it was copied from the paper; nothing is estimated or filled in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lighthouse_audio.report.sources import MREntry, SEDEntry

PAPER_RESULTS = Path(__file__).with_name("paper_results.json")
PAPER_LABEL = "paper (reported)"


def load_paper_results(path: Path = PAPER_RESULTS) -> tuple[list[MREntry], list[SEDEntry]]:
    """Table I and Table II reference entries of a paper-results file (empty lists: none).

    The file has the layout of ``shared/data/paper/paper_tables.json``: Table I rows with
    ``method``, ``encoder``, ``contrastive_encoder``, ``window_s``, ``dataset``, ``split`` and
    ``metrics``; Table II rows with ``method``, ``tuned`` and ``threshold``/``precision``/
    ``recall``/``f1`` (``null`` where the paper prints none). A method's untuned and tuned rows
    become one Table II entry.
    """
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
            encoder=_encoder_label(row),
            window=_window_label(row),
            source=PAPER_LABEL,
        )
        for row in data.get("table_1", [])
    ]
    return mr, _sed_entries(data.get("table_2", []))


def _encoder_label(row: dict[str, Any]) -> str:
    encoder = row.get("encoder", "")
    return f"{encoder} (not contrastive)" if row.get("contrastive_encoder") is False else encoder


def _window_label(row: dict[str, Any]) -> str:
    if row.get("method") != "Baseline" or row.get("window_s") is None:
        return row.get("window", "")
    return f"{row['window_s']:g} s"


def _sed_entries(rows: list[dict[str, Any]]) -> list[SEDEntry]:
    """One entry per method: its untuned row's scores, its tuned row's as the tuned ones."""
    by_method: dict[str, dict[bool, dict[str, Any]]] = {}
    for row in rows:
        by_method.setdefault(row["method"], {})[bool(row.get("tuned"))] = row
    entries = []
    for method, versions in by_method.items():
        given = versions.get(False)
        tuned = versions.get(True)
        base = given or tuned
        scores = {key: _number(base.get(key)) for key in ("precision", "recall", "f1")}
        threshold = _number(base.get("threshold"))
        tuned_scores = (
            {key: _number(tuned.get(key)) for key in ("precision", "recall", "f1")}
            if tuned is not None and given is not None
            else None
        )
        label = method if not base.get("window_s") else f"{method} ({base['window_s']:g} s)"
        entries.append(
            SEDEntry(
                method=label,
                threshold=float("nan") if threshold is None or given is None else threshold,
                scores=scores,
                tuned_threshold=_number(tuned.get("threshold")) if tuned_scores else None,
                tuned_scores=tuned_scores,
                source=PAPER_LABEL,
            )
        )
    return entries


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
