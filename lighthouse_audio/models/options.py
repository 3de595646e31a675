"""How the model builders read Lighthouse's flat config keys (its ``opt``): a config dataclass
read from them, the checks every DETR here shares, and the options a model refuses.

Every error is a one-line ``ValueError`` that names the key and the value; a refused option also
names the model and says what to set instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self, TypeVar

from .input_projection import context_dim
from .layers import SPAN_SINE_FEATS

__all__ = [
    "AT_LEAST_1",
    "ContextDETRConfig",
    "DETRConfig",
    "DerivedKeys",
    "check_config",
    "check_dims",
    "detr_arguments",
    "read_config",
    "refuse_options",
]

Config = TypeVar("Config")
# config fields computed from the whole config rather than read from one key
DerivedKeys = Mapping[str, Callable[[Mapping[str, Any]], Any]]

# The counts every model here needs at least one of (``enc_layers`` may be 0).
AT_LEAST_1 = ("t_feat_dim", "nheads", "dec_layers", "dim_feedforward", "num_queries")
# The constructor arguments every DETR here takes under its config key's name.
DETR_ARGUMENTS = (
    "hidden_dim", "nheads", "enc_layers", "dec_layers", "dim_feedforward", "num_queries",
    "n_input_proj", "input_dropout", "dropout", "aux_loss", "max_q_l",
)  # fmt: skip


def read_config(
    cls: type[Config],
    opt: Mapping[str, Any],
    model: str,
    **derived: Callable[[Mapping[str, Any]], Any],
) -> Config:
    """``cls`` (a dataclass with a ``check()``) from the flat config, checked.

    Each field is the config key of its name, except those in ``derived``, which are computed
    from the whole config (e.g. ``context_dim=context_dim``) once every key is known present.
    A missing key is a one-line ``ValueError`` naming all of them: ``"<model> config lacks ..."``.
    """
    names = [f.name for f in fields(cls) if f.name not in derived]
    missing = [name for name in names if name not in opt]
    if missing:
        raise ValueError(f"{model} config lacks {', '.join(missing)}")
    values = {name: derive(opt) for name, derive in derived.items()}
    config = cls(**values, **{name: opt[name] for name in names})
    config.check()
    return config


def check_config(
    config: Any,
    at_least_1: Iterable[str] = AT_LEAST_1,
    at_least_0: Iterable[str] = ("enc_layers",),
) -> None:
    """The value checks of the keys every model here reads: layer and width counts, the two
    dropouts, ``span_loss_type`` (only ``l1``) and ``position_embedding``."""
    for name in at_least_1:
        if int(getattr(config, name)) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in at_least_0:
        if int(getattr(config, name)) < 0:
            raise ValueError(f"{name} must be at least 0, got {getattr(config, name)}")
    for name in ("input_dropout", "dropout"):
        if not 0 <= float(getattr(config, name)) < 1:
            raise ValueError(f"{name} must be in [0, 1), got {getattr(config, name)}")
    if config.span_loss_type != "l1":
        raise ValueError(f"span_loss_type must be 'l1', got {config.span_loss_type!r}")
    if config.position_embedding not in ("sine", "v2"):
        raise ValueError(f"position_embedding must be 'sine', got {config.position_embedding!r}")


def check_dims(
    hidden_dim: int, nheads: int, n_input_proj: int, *, fixed_width: str | None = None
) -> None:
    """The widths every model here needs: ``nheads`` divides ``hidden_dim``, which is even (frame
    positions interleave sine/cosine pairs over the width), and 1 to 3 input projection blocks.

    ``fixed_width`` names a model with Lighthouse's conditional decoder, which embeds every
    reference span into ``SPAN_SINE_FEATS`` sine features per coordinate whatever the width, so
    only ``hidden_dim == 2 * SPAN_SINE_FEATS`` runs there.
    """
    width = 2 * SPAN_SINE_FEATS
    if fixed_width and hidden_dim != width:
        raise ValueError(
            f"{fixed_width} needs hidden_dim == {width}, got {hidden_dim}: Lighthouse's decoder "
            f"embeds each reference span into {width} sine features whatever the width, so no "
            "other value can run (or load a Lighthouse checkpoint)"
        )
    if nheads <= 0 or hidden_dim % nheads:
        raise ValueError(f"nheads={nheads} must divide hidden_dim={hidden_dim}")
    if hidden_dim % 2:
        raise ValueError(f"hidden_dim must be even, got {hidden_dim}")
    if not 1 <= n_input_proj <= 3:
        raise ValueError(f"n_input_proj must be 1, 2 or 3, got {n_input_proj}")


def detr_arguments(config: Any) -> dict[str, Any]:
    """The constructor arguments every DETR here takes, from its config (``hidden_dim`` ...
    ``max_q_l``; the input widths and the model's own settings are the builder's to add)."""
    return {name: getattr(config, name) for name in DETR_ARGUMENTS}


def refuse_options(
    opt: Mapping[str, Any], model: str, static_shapes_reason: str | None = None
) -> None:
    """Refuse this project's QD-DETR extensions in another model, and ``static_shapes`` where
    padding every batch to the span changes what the model computes (``static_shapes_reason``
    says why; None: the model pads safely).

    ``joint_prior`` and ``neg_label_loss_coef`` need QD-DETR's global token and negative pass;
    they are wired into QD-DETR's network only.
    """
    if opt.get("joint_prior") or opt.get("joint_prior_folds"):
        raise ValueError(
            f"joint_prior is a qd_detr option (joint_prior_folds too); {model} has no joint "
            "prior, so leave them unset"
        )
    if float(opt.get("neg_label_loss_coef") or 0) > 0:
        raise ValueError(
            "neg_label_loss_coef is a qd_detr option (it decodes QD-DETR's negative pass); "
            f"leave it at 0 for {model}"
        )
    if static_shapes_reason and opt.get("static_shapes"):
        raise ValueError(
            f"static_shapes pads every batch to max_v_l and max_q_l, which changes {model}'s "
            f"outputs ({static_shapes_reason}); static_shapes must be false for {model} "
            "(--fast without it works)"
        )


@dataclass(frozen=True, kw_only=True)
class DETRConfig:
    """The config keys every DETR here reads (Lighthouse's names and its QD-DETR defaults),
    checked once. A model's config subclasses it, restating each default its Lighthouse config
    changes and adding its own keys; ``from_opt`` reads them from a flat config (an EasyDict, a
    checkpoint's ``opt``): a missing key or an impossible value is a one-line ``ValueError``.
    """

    model: ClassVar[str]  # the name errors give
    fixed_width: ClassVar[str | None] = None  # see check_dims
    derived_keys: ClassVar[DerivedKeys] = {}

    t_feat_dim: int
    hidden_dim: int = 256
    nheads: int = 8
    enc_layers: int = 2
    dec_layers: int = 2
    dim_feedforward: int = 1024
    num_queries: int = 10
    n_input_proj: int = 2
    input_dropout: float = 0.5
    dropout: float = 0.1
    aux_loss: bool = True
    max_q_l: int = 32
    span_loss_type: str = "l1"
    position_embedding: str = "sine"

    @classmethod
    def from_opt(cls, opt: Mapping[str, Any]) -> Self:
        return read_config(cls, opt, cls.model, **cls.derived_keys)

    def check(self) -> None:
        check_config(self)
        check_dims(
            int(self.hidden_dim), int(self.nheads), int(self.n_input_proj),
            fixed_width=self.fixed_width,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ContextDETRConfig(DETRConfig):
    """A DETR whose "video" input is the TEF plus the audio frames (``context_dim``)."""

    derived_keys: ClassVar[DerivedKeys] = {"context_dim": context_dim}

    context_dim: int
