"""Run a model over a split: Lighthouse-format predictions, and metrics when labels exist."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from lighthouse_audio.data.collate import move_to_device
from lighthouse_audio.evaluation.metrics import eval_submission


@contextmanager
def prediction_mode(model: nn.Module) -> Iterator[None]:
    """Evaluation mode, with a model's training-only negative pass (``negative_pass``, QD-DETR)
    skipped meanwhile: it changes no prediction (tests/prediction/test_negative_pass.py) and
    costs an encoder pass."""
    model.eval()
    negative_pass = getattr(model, "negative_pass", None)
    if negative_pass is not None:
        model.negative_pass = False
    try:
        yield
    finally:
        if negative_pass is not None:
            model.negative_pass = negative_pass


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable,
    postprocessor: Callable[[dict[str, Any], list[dict]], list[dict]],
    device: torch.device,
    progress: bool = True,
) -> list[dict]:
    """Prediction lines ``{qid, query, vid, pred_relevant_windows}`` in loader order."""
    predictions: list[dict] = []
    with prediction_mode(model):
        for metas, inputs, _ in tqdm(loader, desc="predict", leave=False, disable=not progress):
            inputs, _ = move_to_device(inputs, None, device)
            outputs = model(**inputs)
            predictions.extend(postprocessor(outputs, metas))
    return predictions


def evaluate(
    model: nn.Module,
    loader: Iterable,
    postprocessor: Callable[[dict[str, Any], list[dict]], list[dict]],
    device: torch.device,
    ground_truth: list[dict],
    progress: bool = True,
) -> tuple[dict, list[dict]]:
    """Predict, then score with the standalone evaluator: ``(metrics, predictions)``."""
    predictions = predict(model, loader, postprocessor, device, progress)
    return eval_submission(predictions, ground_truth), predictions
