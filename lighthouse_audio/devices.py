"""Which torch device a command runs on: the one rule every command shares."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(requested: str | torch.device) -> torch.device:
    """``auto``: CUDA when there is one, else the CPU. ``cuda`` without a GPU falls back to the
    CPU with a note (Lighthouse's configs say ``cuda``); a name torch does not know is a
    one-line ``ValueError``."""
    text = str(requested)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"unknown device {text!r} (use cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        print("lighthouse: CUDA is not available, using the CPU")
        return torch.device("cpu")
    return device
