"""How many tokens and frames a model reads: Lighthouse's ``max_*_l`` keys, resolved once.

Lighthouse writes ``-1`` for "no limit", except that a query is then still cut to 100 tokens.
Every reader of these keys (training data, ``lighthouse infer``, the predictor, chunked
prediction) goes through :meth:`LengthLimits.from_config`, so the rule lives in one place.

>>> LengthLimits.from_config({"max_q_l": 32, "max_v_l": 75, "max_a_l": -1}).span
75
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

UNLIMITED_QUERY_TOKENS = 100  # Lighthouse's cut for max_q_l == -1


@dataclass(frozen=True)
class LengthLimits:
    """``max_q_l`` tokens per query; ``max_v_l`` / ``max_a_l`` frames (None: no limit)."""

    max_q_l: int
    max_v_l: int | None
    max_a_l: int | None

    @classmethod
    def from_config(cls, opt: Mapping[str, Any]) -> LengthLimits:
        values = {key: int(opt[key]) for key in ("max_q_l", "max_v_l", "max_a_l")}
        for key, value in values.items():
            if value == 0 or value < -1:
                raise ValueError(f"{key} must be positive (or -1 for no limit), got {value}")
        return cls(
            max_q_l=UNLIMITED_QUERY_TOKENS if values["max_q_l"] == -1 else values["max_q_l"],
            max_v_l=None if values["max_v_l"] == -1 else values["max_v_l"],
            max_a_l=None if values["max_a_l"] == -1 else values["max_a_l"],
        )

    @property
    def span(self) -> int | None:
        """Frames the model reads from one recording (None: any number)."""
        bounds = [v for v in (self.max_v_l, self.max_a_l) if v is not None]
        return min(bounds) if bounds else None

    def context_length(self, num_frames: int) -> int:
        """Frames kept of a recording with ``num_frames``: the first ``span`` of them."""
        return num_frames if self.span is None else min(num_frames, self.span)
