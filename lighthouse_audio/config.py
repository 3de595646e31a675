"""Lighthouse-compatible configuration: layered YAML -> flat EasyDict.

Lighthouse merges ``base.yml`` < ``feature/{feature}.yml`` < ``model/{model}.yml`` <
``dataset/{dataset}.yml`` with plain dict updates (later files win) and then adds derived keys
(result and feature paths). We do exactly that, so Lighthouse's own config tree loads unchanged,
and then apply ``key=value`` overrides. Both are strict: a key no layer may hold
(``config_keys``) is an error naming the file and the key, with a suggestion, and so is an
override of an unknown key or with a value that cannot take the key's type.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from easydict import EasyDict

from lighthouse_audio.data.layout import FeatureLayout

# An installed package carries the tree as lighthouse_audio/configs (setup.py); a source checkout
# keeps it at the top of the repository, as Lighthouse does.
_PACKAGED_CONFIG_ROOT = Path(__file__).resolve().parent / "configs"
_SOURCE_CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_CONFIG_ROOT = (
    _PACKAGED_CONFIG_ROOT if (_PACKAGED_CONFIG_ROOT / "base.yml").is_file() else _SOURCE_CONFIG_ROOT
)

# Keys a run may set although no YAML layer defines them (Lighthouse adds them itself or reads
# them from its command line, or they are this project's options, kept out of the YAML files so
# those stay equal to Lighthouse's).
EXTRA_KEYS: dict[str, Any] = {
    "features_root": "features",
    "resume": None,
    "joint_prior": None,  # a joint-space file for QD-DETR (models/joint_prior.py)
    # cross-fitted fold spaces for the prior while training (models/joint_prior.py); None: none
    "joint_prior_folds": None,
    # weight of QD-DETR's absent-sound loss (models/criterion.py); 0: Lighthouse's losses
    "neg_label_loss_coef": 0.0,
    # weight of the joint prior in moment scores (models/prior_score.py); 0: Lighthouse's scores
    "prior_score_mix": 0.0,
    # redraw each window around its most similar frame, over the frames at least this fraction
    # as similar to the query (models/prior_refine.py); 0: the model's bounds, as Lighthouse
    "prior_refine": 0.0,
    # the validation metric that picks best.ckpt (Lighthouse: MR-full-mAP; the DCASE 2026 Task 6
    # baseline: MR-full-R1@0.7)
    "selection_metric": "MR-full-mAP",
    # the features of eval_path when they lie under another root than train_path's (same
    # layout: ROOT/<dset_name>/<feature>/); None: features_root
    "eval_features_root": None,
    # validate on whole recordings, the longer ones predicted in overlapping chunks as
    # `lighthouse infer` does (engine/whole_validation.py); false: their first max_v_l frames,
    # as Lighthouse does
    "eval_whole_recordings": False,
    # validate (and keep in best.ckpt) an exponential moving average of the weights with this
    # decay per step (engine/weight_average.py); 0: the raw weights, as Lighthouse's base.yml
    # (its own model_ema/ema_decay keys, off there and on in its TaskWeave configs, are its
    # per-epoch average, honoured too; the two are not combined).
    "weight_average": 0.0,
    # the learning-rate schedule (engine/lr_schedule.py): "step", Lighthouse's StepLR at lr_drop,
    # or "cosine", a decay towards 0 over n_epoch after warmup_epochs of linear warm-up
    "lr_schedule": "step",
    "warmup_epochs": 0,
    # Training speed (engine/batches.py, docs/PERFORMANCE.md), none of which changes the model
    # or its losses: features and batches on the training device, stored as float16 to halve
    # their memory; every batch padded to the model's span and max_q_l (one shape, for CUDA
    # graphs); torch.compile; the matching's assignment solved on the device ("device") or by
    # scipy on the host ("scipy", Lighthouse's); bf16 autocast ("bf16"), which does change
    # results slightly, hence off by default.
    "resident_data": False,
    "feature_dtype": "float32",
    "static_shapes": False,
    "compile_model": False,
    "assignment": "scipy",
    "amp": "off",
    # AdamW's fused kernel, the same update up to float rounding, 3.4-4x faster a step on CPU
    # (engine/optimizer.py); false: torch's default per-tensor loop, as Lighthouse runs it
    "fused_adamw": True,
    # set by training from the features' manifest.json (data/feature_manifest.py), so a checkpoint
    # says how to make the features it reads
    "feature_manifest": None,
}


def config_root() -> Path:
    """The config tree in use: ``$LIGHTHOUSE_AUDIO_CONFIGS``, else the one shipped in the package
    (a source checkout: the repository's ``configs/``)."""
    return Path(os.environ.get("LIGHTHOUSE_AUDIO_CONFIGS", DEFAULT_CONFIG_ROOT))


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML layer; an empty file is an empty layer."""
    try:
        with open(path) as f:
            loaded = yaml.safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        first_line = str(exc).splitlines()[0]
        raise ValueError(f"{path}: invalid YAML ({first_line})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(
            f"{path}: expected a mapping of keys to values, got {type(loaded).__name__}"
        )
    return loaded


def layer_paths(root: Path, model: str, dataset: str, feature: str) -> list[Path]:
    """The YAML files of one run, in Lighthouse's merge order."""
    return [
        root / "base.yml",
        root / "feature" / f"{feature}.yml",
        root / "model" / f"{model}.yml",
        root / "dataset" / f"{dataset}.yml",
    ]


def _is_plugin_feature_layer(path: Path, feature: str) -> bool:
    return path.parent.name == "feature" and path.stem == feature and not path.is_file()


def feature_layer(feature: str) -> dict[str, Any]:
    """The ``feature/<name>.yml`` layer of a feature plugin that ships none: an audio feature
    with the TEF as its "video" input, dims read off its encoder class
    (``FeatureSpec.encoder_dims``). Features without a YAML file or class dims are an error."""
    from lighthouse_audio.registry import FEATURES

    dims = FEATURES.get(feature).encoder_dims()
    if dims is None:
        raise FileNotFoundError(
            f"feature '{feature}' has no configs/feature/{feature}.yml and its encoder class "
            "declares no audio_dim/text_dim to make one from"
        )
    return {
        "ctx_mode": "audio_tef",
        "v_feat_types": None,
        "a_feat_types": feature,
        "t_feat_type": feature,
        "v_feat_dim": 2,
        "a_feat_dim": dims[0],
        "t_feat_dim": dims[1],
    }


def add_derived_keys(cfg: EasyDict, feature: str, model: str | None = None) -> EasyDict:
    """Paths Lighthouse derives after merging (same names and layout as Lighthouse).

    The run folder is named after ``model``, the model's config file (Lighthouse's ``--model``),
    which is ``model_name`` except for variants sharing one (TaskWeave's two configs both say
    ``model_name: taskweave``)."""
    folder = model or cfg.model_name
    cfg.results_dir = os.path.join(cfg.results_dir, folder, cfg.dset_name, feature)
    cfg.ckpt_filepath = os.path.join(cfg.results_dir, cfg.ckpt_filename)
    cfg.train_log_filepath = os.path.join(cfg.results_dir, cfg.train_log_filename)
    cfg.eval_log_filepath = os.path.join(cfg.results_dir, cfg.eval_log_filename)
    features_root = cfg.get("features_root", EXTRA_KEYS["features_root"])
    dset_features = os.path.join(features_root, cfg.dset_name)
    v_types = cfg.get("v_feat_types")
    cfg.v_feat_dirs = (
        [os.path.join(dset_features, t) for t in v_types.split("_")] if v_types else None
    )
    cfg.t_feat_dir = str(FeatureLayout(dset_features, cfg.t_feat_type).text_dir)
    a_types = cfg.get("a_feat_types")
    cfg.a_feat_dirs = [os.path.join(dset_features, a_types)] if a_types else None
    cfg.t_feat_dir_pretrain_eval = None
    return cfg


def load_config(
    model: str,
    dataset: str,
    feature: str,
    overrides: Iterable[str] = (),
    root: Path | None = None,
) -> EasyDict:
    """Merge the four layers, apply ``key=value`` overrides, add derived keys."""
    root = Path(root) if root is not None else config_root()
    merged: dict[str, Any] = dict(EXTRA_KEYS)
    for path in layer_paths(root, model, dataset, feature):
        layer = (
            feature_layer(feature) if _is_plugin_feature_layer(path, feature) else read_yaml(path)
        )
        check_layer_keys(path, layer)
        merged.update(layer)
    apply_overrides(merged, overrides)
    return add_derived_keys(EasyDict(merged), feature, model)


def check_layer_keys(path: Path, layer: Mapping[str, Any]) -> None:
    """Refuse a YAML layer that sets a key no layer may hold (a typo, most likely)."""
    from lighthouse_audio.config_keys import is_known, known_keys

    for key in layer:
        if not is_known(str(key)) and key not in EXTRA_KEYS:
            close = difflib.get_close_matches(str(key), sorted(known_keys() | set(EXTRA_KEYS)), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{path}: unknown config key '{key}'{hint}")


def parse_override(text: str) -> tuple[str, Any]:
    """``"lr=3e-4"`` -> ``("lr", 0.0003)``; values are parsed as YAML scalars."""
    key, sep, raw = text.partition("=")
    key = key.strip().removeprefix("--")
    if not sep or not key:
        raise ValueError(f"override {text!r} must look like key=value")
    if not raw.strip():
        return key, None
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or exc).strip().splitlines()[0]
        raise ValueError(f"override {text!r}: the value is not a YAML scalar ({problem})") from None


def coerce(key: str, value: Any, current: Any) -> Any:
    """Keep the type of the value being overridden (int stays int, bool stays bool, ...)."""
    if current is None or value is None or isinstance(current, (list, dict)):
        return value
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ValueError(f"override {key}={value!r}: expected true/false")
    if isinstance(current, (int, float)) and isinstance(value, str):
        try:  # YAML 1.1 reads "3e-4" (no dot) as a string
            value = float(value)
        except ValueError:
            raise ValueError(f"override {key}={value!r}: expected a number") from None
    if isinstance(current, (int, float)) and isinstance(value, (int, float)):
        if isinstance(current, int) and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"override {key}={value!r}: expected an integer")
        return type(current)(value)
    if isinstance(current, str):
        return str(value)
    if type(value) is not type(current):
        raise ValueError(
            f"override {key}={value!r}: expected {type(current).__name__}, "
            f"got {type(value).__name__}"
        )
    return value


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    for text in overrides:
        key, value = parse_override(text)
        if key not in cfg:
            close = difflib.get_close_matches(key, list(cfg), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown config key {key!r}{hint}")
        cfg[key] = coerce(key, value, cfg[key])
    return cfg


def to_plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """EasyDict -> plain dict (for YAML dumps and weights-only checkpoints)."""
    return {k: to_plain(v) if isinstance(v, Mapping) else v for k, v in cfg.items()}


def save_config(cfg: Mapping[str, Any], path: Path) -> None:
    from lighthouse_audio.file_io import write_text

    write_text(path, yaml.safe_dump(to_plain(cfg), sort_keys=False))
