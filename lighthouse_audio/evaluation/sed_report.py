"""A whole zero-shot SED evaluation: frame-based micro scores at a threshold, optionally a
threshold tuned on a dev split, and sed_eval's event- and segment-based scores.

``lighthouse sed-eval`` is a thin caller of :func:`evaluate_sed` and :func:`summary`.
The result keeps the AMR wrapper's top-level keys for the given threshold (``precision``,
``recall``, ``f1``, ``counts``, ...), adds ``event_based``/``segment_based`` and, when tuned,
``tuned_threshold`` and ``tuned`` (the same scores at that threshold, and the dev F1 curve).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lighthouse_audio.evaluation.sed import rasterise, sed_result, tune_threshold
from lighthouse_audio.evaluation.sed_events import sed_event_scores

__all__ = ["DevSplit", "EventOptions", "evaluate_sed", "summary"]


@dataclass(frozen=True)
class EventOptions:
    """sed_eval's matching settings (seconds; ``percentage_of_length`` a fraction)."""

    t_collar: float = 0.2
    percentage_of_length: float = 0.2
    segment_length: float = 1.0


@dataclass(frozen=True)
class DevSplit:
    """Where the threshold is tuned; ``source`` names it in errors and the result."""

    reference: list[dict]
    submission: list[dict]
    source: str = "dev"
    paths: tuple[str, str] = ("", "")  # (submission, gt), recorded in the result


def _rasterise(reference: list[dict], submission: list[dict], resolution: float, source: str):
    try:
        return rasterise(reference, submission, resolution)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _events(reference, submission, threshold: float, options: EventOptions) -> dict[str, Any]:
    return sed_event_scores(
        reference, submission, threshold, t_collar=options.t_collar,
        percentage_of_length=options.percentage_of_length, segment_length=options.segment_length,
    )  # fmt: skip


def evaluate_sed(
    reference: list[dict],
    submission: list[dict],
    threshold: float = 0.5,
    resolution: float = 1.0,
    events: EventOptions | None = EventOptions(),  # noqa: B008 - frozen: a constant
    dev: DevSplit | None = None,
    thresholds: Sequence[float] = (),
    source: str = "submission",
) -> dict[str, Any]:
    """The result dict of the module doc; input problems are one line prefixed by ``source``."""
    raster = _rasterise(reference, submission, resolution, source)
    result = sed_result(raster, threshold)
    if events is not None:
        result.update(_events(reference, submission, threshold, events))
    if dev is None:
        return result
    dev_raster = _rasterise(dev.reference, dev.submission, resolution, dev.source)
    best, curve = tune_threshold(dev_raster, thresholds)
    tuned = sed_result(raster, best)
    del tuned["labels"]  # same as the untuned result's
    if events is not None:
        tuned.update(_events(reference, submission, best, events))
    tuned["dev"] = {
        "submission": dev.paths[0],
        "gt": dev.paths[1],
        "f1": next(point["f1"] for point in curve if point["threshold"] == best),
        "curve": curve,
    }
    result["tuned_threshold"] = best
    result["tuned"] = tuned
    return result


def summary(result: dict[str, Any]) -> str:
    """Human-readable lines for what the wrapper's stdout does not show."""
    lines = []

    def scores(name: str, block: dict) -> None:
        lines.append(
            f"{name}: P {block['precision']:.2f}, R {block['recall']:.2f}, F1 {block['f1']:.2f}"
        )

    for prefix, block in (("", result), ("tuned ", result.get("tuned"))):
        if block is None:
            continue
        if prefix:
            lines.append(
                f"tuned threshold {result['tuned_threshold']:g} (dev micro F1 "
                f"{block['dev']['f1']:.2f})"
            )
            scores(f"{prefix}frame-based (micro)", block)
        if "event_based" in block:
            event = block["event_based"]
            scores(
                f"{prefix}event-based (collar {event['t_collar']:g} s / "
                f"{100 * event['percentage_of_length']:g}% of length)",
                event,
            )
            scores(
                f"{prefix}segment-based ({block['segment_based']['segment_length']:g} s)",
                block["segment_based"],
            )
    return "".join(f"{line}\n" for line in lines)
