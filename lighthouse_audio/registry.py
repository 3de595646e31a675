"""One registry class for every kind of plugin: models, datasets and features.

Built-in plugins register themselves when their module is imported (see ``builtins``);
third-party packages add theirs through entry points, e.g. in their ``setup.py``::

    entry_points={"lighthouse_audio.models": ["my_detr = my_pkg.model"]}

Importing the entry point's module is enough: it registers with the decorators below.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any


@dataclass(frozen=True)
class Entry:
    """A registered plugin: the object (usually a builder or a spec) and free-form metadata."""

    name: str
    obj: Any
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    """Name -> plugin mapping with entry-point discovery and clear errors on misses."""

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._entry_points_loaded = False

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Decorator: ``@MODELS.register("qd_detr")`` registers the decorated object."""

        def decorator(obj: Any) -> Any:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: Any, **meta: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = Entry(name, obj, dict(meta))

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            self.load_entry_points()
        if name not in self._entries:
            known = ", ".join(self.names()) or "(none)"
            raise KeyError(f"unknown {self.kind} '{name}'; registered: {known}")
        return self._entries[name]

    def names(self) -> list[str]:
        self.load_entry_points()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry]:
        for name in self.names():
            yield self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def load_entry_points(self) -> None:
        """Import every module advertised under this registry's entry-point group, once.

        A broken third-party plugin is a warning, not a crash: the built-ins stay usable.
        """
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            try:
                loaded = ep.load()
            except Exception as exc:  # noqa: BLE001 - any plugin failure must not break the CLI
                warnings.warn(
                    f"{self.kind} plugin '{ep.name}' ({ep.value}) failed to load: {exc}",
                    stacklevel=2,
                )
                continue
            if ep.name not in self._entries and not isinstance(loaded, type(importlib)):
                self.add(ep.name, loaded)


MODELS = Registry("model", entry_point_group="lighthouse_audio.models")
DATASETS = Registry("dataset", entry_point_group="lighthouse_audio.datasets")
FEATURES = Registry("feature", entry_point_group="lighthouse_audio.features")


def valid_pairs() -> list[tuple[str, str]]:
    """Every (dataset, feature) pair that can be trained or evaluated together.

    The one place that decides compatibility: a dataset and a feature go together when they
    share a domain ("audio", ...). Datasets may narrow this with ``features=[...]`` metadata.
    """
    import lighthouse_audio.builtins  # noqa: F401 - registers built-in plugins

    pairs = []
    for dataset in DATASETS.entries():
        allowed = dataset.meta.get("features")
        for feature in FEATURES.entries():
            if dataset.meta.get("domain") != feature.meta.get("domain"):
                continue
            if allowed is not None and feature.name not in allowed:
                continue
            pairs.append((dataset.name, feature.name))
    return pairs


def check_pair(dataset: str, feature: str) -> None:
    """Raise a one-line ValueError if ``dataset`` cannot be used with ``feature``."""
    if (dataset, feature) not in valid_pairs():
        usable = sorted(f for d, f in valid_pairs() if d == dataset)
        raise ValueError(
            f"dataset '{dataset}' cannot be used with feature '{feature}'; "
            f"usable features: {', '.join(usable) or '(none)'}"
        )
