"""One registry class for every kind of plugin: models, baselines, datasets and features.

A plugin is an object that declares itself once and registers when its module is imported
(timm's ``@register_model``): a model is its ``build`` function (DETR's one builder per model),
registered under the model's name; a dataset, a feature or a baseline is a spec object with a
``name``::

    @MODELS.register(name="qd_detr")
    def build(opt) -> ModelBundle: ...

    DATASETS.register(DatasetSpec(name="castella", domain="audio", max_ts_val=300))

A registry imports its package of built-in plugins the first time it is asked for a name (so
there is no second list of plugins, and the registry imports none of them), then the modules
third-party packages advertise through entry points, e.g. in their ``setup.py``::

    entry_points={"lighthouse_audio.models": ["my_detr = my_pkg.model"]}

Importing the entry point's module is enough: it registers with the decorator.
"""

from __future__ import annotations

import importlib
import types
import warnings
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

__all__ = [
    "BASELINES",
    "DATASETS",
    "FEATURES",
    "MODELS",
    "Registry",
    "check_pair",
    "valid_pairs",
]


class Registry:
    """Name -> plugin, with the built-in package and entry points loaded on first use.

    Args:
        kind: what the plugins are, for messages ("model").
        entry_point_group: where third-party plugins are advertised.
        builtins: the package whose import registers the built-in plugins (None: none).
    """

    def __init__(self, kind: str, entry_point_group: str, builtins: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.builtins = builtins
        self._plugins: dict[str, Any] = {}
        self._unlisted: set[str] = set()  # found by get(), left out of names()
        self._loaded = False

    def register(self, plugin: Any = None, *, name: str | None = None, listed: bool = True) -> Any:
        """Register ``plugin`` under ``name``, else its ``name`` attribute, else its
        ``__name__``, and return it: ``REGISTRY.register(spec)``, ``@REGISTRY.register`` or
        ``@REGISTRY.register(name="qd_detr")``. A taken name is an error. ``listed=False``: an
        alias that ``get`` finds but ``names`` (CLI choices, listings) leaves out, e.g. the
        ``model_name`` Lighthouse's checkpoints record for two registered variants."""
        if plugin is None:
            return lambda obj: self.register(obj, name=name, listed=listed)
        name = name or getattr(plugin, "name", None) or getattr(plugin, "__name__", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} plugin needs a name, got {plugin!r}")
        if name in self._plugins:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._plugins[name] = plugin
        if not listed:
            self._unlisted.add(name)
        return plugin

    def unregister(self, name: str) -> Any:
        """Remove and return a plugin (tests register temporary ones)."""
        self._unlisted.discard(name)
        return self._plugins.pop(name)

    def get(self, name: str) -> Any:
        if name not in self._plugins:
            self.load()
        if name not in self._plugins:
            known = ", ".join(self.names()) or "(none)"
            raise KeyError(f"unknown {self.kind} '{name}'; registered: {known}")
        return self._plugins[name]

    def names(self) -> list[str]:
        self.load()
        return sorted(name for name in self._plugins if name not in self._unlisted)

    def __iter__(self) -> Iterator[Any]:
        """The plugins, by name."""
        for name in self.names():
            yield self._plugins[name]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def load(self) -> None:
        """Import the built-in package, then every entry-point module of the group, once.

        A broken third-party plugin is a warning, not a crash: the built-ins stay usable.
        """
        if self._loaded:
            return
        self._loaded = True
        if self.builtins is not None:
            importlib.import_module(self.builtins)
        for ep in entry_points(group=self.entry_point_group):
            try:
                loaded = ep.load()
            except Exception as exc:  # noqa: BLE001 - any plugin failure must not break the CLI
                warnings.warn(
                    f"{self.kind} plugin '{ep.name}' ({ep.value}) failed to load: {exc}",
                    stacklevel=2,
                )
                continue
            if ep.name not in self._plugins and not isinstance(loaded, types.ModuleType):
                self.register(loaded, name=ep.name)


MODELS = Registry("model", "lighthouse_audio.models", builtins="lighthouse_audio.models")
BASELINES = Registry("baseline", "lighthouse_audio.baselines", builtins="lighthouse_audio.baseline")
DATASETS = Registry(
    "dataset", "lighthouse_audio.datasets", builtins="lighthouse_audio.data.datasets"
)
FEATURES = Registry("feature", "lighthouse_audio.features", builtins="lighthouse_audio.encoders")


def valid_pairs() -> list[tuple[str, str]]:
    """Every (dataset, feature) pair that can be trained or evaluated together.

    The one place that decides compatibility: a dataset and a feature go together when they
    share a ``domain`` ("audio", ...); a dataset may narrow this with ``features=(...)``.
    """
    pairs = []
    for dataset in DATASETS:
        for feature in FEATURES:
            if dataset.domain != feature.domain:
                continue
            if dataset.features is not None and feature.name not in dataset.features:
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
