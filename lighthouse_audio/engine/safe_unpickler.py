"""Unpickling checkpoints without running their code: an allow-list of the types they hold.

A torch checkpoint is a pickle, and a pickle may name any function to call while it loads, so a
checkpoint from the internet could run anything. ``torch.load(weights_only=True)`` would refuse
such files, but it cannot rebuild the ``easydict.EasyDict`` that every Lighthouse checkpoint keeps
its config in (it only fills plain dicts). This module is a ``pickle_module`` for ``torch.load``
whose ``Unpickler`` resolves only what Lighthouse and this project write:

- tensors and parameters (``torch._utils`` rebuild functions; storages are resolved by torch
  itself before this module is asked), dtypes and layouts, ``torch.Size``;
- ``collections.OrderedDict`` (state dicts), ``easydict.EasyDict`` (configs) and the builtin
  containers;
- numpy arrays, dtypes and scalars (numpy 1 and 2 module paths; ``_codecs.encode``, which
  protocol-2 pickles use to spell their raw bytes);
- ``argparse.Namespace``, the training arguments MAE-style checkpoints (M2D's) keep under
  ``'args'``: rebuilding one only sets attributes.

Anything else (``os.system``, ``builtins.eval``, a class with a ``__reduce__``) raises
:class:`UnsafeCheckpointError` before it is even imported, so nothing in the file runs.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import pickle
from typing import Any

import torch

__all__ = ["Unpickler", "UnsafeCheckpointError", "load"]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file asks for a global outside the allow-list."""

    def __init__(self, module: str, name: str) -> None:
        self.global_name = f"{module}.{name}"
        super().__init__(
            f"it would call {self.global_name}, which no checkpoint needs; refused without "
            "running it (allowed: tensors, state dicts, EasyDict configs, numpy arrays)"
        )


_ALLOWED: dict[str, frozenset[str]] = {
    "collections": frozenset({"OrderedDict"}),
    "argparse": frozenset({"Namespace"}),
    "easydict": frozenset({"EasyDict"}),
    "builtins": frozenset(
        {
            "dict",
            "list",
            "tuple",
            "set",
            "frozenset",
            "int",
            "float",
            "complex",
            "bool",
            "str",
            "bytes",
            "bytearray",
            "slice",
            "range",
        }
    ),  # fmt: skip
    "torch._utils": frozenset(
        {
            "_rebuild_tensor",
            "_rebuild_tensor_v2",
            "_rebuild_parameter",
            "_rebuild_parameter_with_state",
        }
    ),  # fmt: skip
    "torch": frozenset({"Size"}),
    "numpy": frozenset({"ndarray", "dtype"}),
    # protocol-2 pickles spell bytes (numpy scalars' raw data) as _codecs.encode(text, "latin1")
    "_codecs": frozenset({"encode"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
}
# numpy 2 pickles dtypes as instances of ``numpy.dtypes.<Name>DType`` classes.
_NUMPY_DTYPE_MODULE = "numpy.dtypes"


def _resolve(module: str, name: str) -> Any:
    if name in _ALLOWED.get(module, ()):
        return getattr(importlib.import_module(module), name)
    if module == "torch":
        # dtypes (torch.float32), layouts (torch.strided), memory formats: plain values
        value = getattr(torch, name, None)
        if isinstance(value, (torch.dtype, torch.layout, torch.memory_format)):
            return value
    if module == _NUMPY_DTYPE_MODULE and name.endswith("DType"):
        import numpy.dtypes

        value = getattr(numpy.dtypes, name, None)
        if isinstance(value, type):
            return value
    raise UnsafeCheckpointError(module, name)


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only allow-listed globals (see the module doc)."""

    def find_class(self, module: str, name: str) -> Any:
        # protocol-2 pickles (torch.save's default) spell Python 2 names: __builtin__.set
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        return _resolve(_compat_pickle.IMPORT_MAPPING.get(module, module), name)


def load(file: Any, **kwargs: Any) -> Any:
    """``pickle.load`` with the allow-list (torch calls it for old, non-zip checkpoints)."""
    return Unpickler(file, **kwargs).load()
