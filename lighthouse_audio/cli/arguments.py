"""Argument types that refuse what a command cannot use, at parse time and in one line.

``type=float`` accepts ``nan``, ``inf`` and negative sizes, which then fail deep inside a run;
these types say ``argument --hop: expected a number > 0, got '-1'`` before anything starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "FRACTION",
    "NON_NEGATIVE",
    "POSITIVE",
    "PORT",
    "PRIOR_REFINE_HELP",
    "PRIOR_SCORE_MIX_HELP",
    "SCORE",
    "SEED",
    "count",
    "number",
]


def count(lowest: int = 1, highest: int | None = None) -> Callable[[str], int]:
    """A whole number in ``[lowest, highest]``."""
    bounds = f">= {lowest}" if highest is None else f"in {lowest}..{highest}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number {bounds}, got {text!r}"
            ) from None
        if value < lowest or (highest is not None and value > highest):
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {text!r}")
        return value

    return parse


def number(
    lowest: float | None = None, above: bool = False, highest: float | None = None
) -> Callable[[str], float]:
    """A finite number, ``> lowest`` when ``above`` else ``>= lowest``, and ``<= highest``."""
    parts = []
    if lowest is not None:
        parts.append(f"{'>' if above else '>='} {lowest:g}")
    if highest is not None:
        parts.append(f"<= {highest:g}")
    wanted = "a finite number" + (f" {' and '.join(parts)}" if parts else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        too_low = lowest is not None and (value <= lowest if above else value < lowest)
        too_high = highest is not None and value > highest
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


POSITIVE = number(0, above=True)  # seconds, rates, sizes
NON_NEGATIVE = number(0)  # collars, weight decay
FRACTION = number(0, highest=1)
SCORE = number()  # thresholds: any finite number
SEED = count(0)

PRIOR_SCORE_MIX_HELP = (
    "weight of the joint prior in moment scores, 0..1 (default: the checkpoint's; needs a model "
    "trained with joint_prior)"
)
PRIOR_REFINE_HELP = (
    "redraw each window around its most similar frame, over the frames at least R times as "
    "similar, 0..1; 0: the model's bounds (default: the checkpoint's; needs joint_prior)"
)
PORT = count(0, 65535)
