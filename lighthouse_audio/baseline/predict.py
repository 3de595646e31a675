"""Prediction lines from similarity curves, in the layout ``lighthouse eval`` scores."""

from __future__ import annotations

from typing import Any

from .moments import similarity_to_moments
from .similarity import SimilarityCurves

__all__ = ["predict_lines"]


def predict_lines(
    curves: SimilarityCurves, threshold: float, median_length: int
) -> list[dict[str, Any]]:
    """One line per scored query: ``{"qid", "query", "vid", "pred_relevant_windows"}``, with
    ``pred_relevant_windows = [[start, end, score], ...]`` by descending score."""
    hop = curves.layout.hop
    return [
        {
            "qid": query.qid,
            "query": query.query,
            "vid": query.vid,
            "pred_relevant_windows": similarity_to_moments(
                curve, centres, hop, float(query.duration), threshold, median_length
            ),
        }
        for query, curve, centres in zip(curves.queries, curves.curves, curves.centres, strict=True)
    ]
