from pathlib import Path

import pytest
import torch

from lighthouse_audio.config import apply_overrides, load_config, save_config
from tests.conftest import REPO_ROOT, fixture_files

DERIVED = [
    "results_dir", "ckpt_filepath", "train_log_filepath", "eval_log_filepath", "v_feat_dirs",
    "t_feat_dir", "a_feat_dirs", "t_feat_dir_pretrain_eval",
]  # fmt: skip


@pytest.mark.parametrize("io_path", fixture_files("*_io.pt"), ids=lambda p: p.name)
def test_lighthouse_tree_loads_unchanged_and_matches_fixture_config(
    io_path, lighthouse_configs_dir
):
    """Lighthouse's own YAML tree gives the exact merged config stored in the fixture."""
    expected = torch.load(io_path, weights_only=True)["config"]
    cfg = load_config(
        expected["model_name"], expected["dset_name"], expected["a_feat_types"],
        overrides=[f"seed={expected['seed']}"], root=lighthouse_configs_dir,
    )  # fmt: skip
    for key, value in expected.items():
        if key.endswith("_log_txt_formatter"):
            continue  # added by the training loop, not the loader
        assert cfg[key] == value, key


def test_project_configs_equal_lighthouse_for_audio(lighthouse_configs_dir):
    ours = load_config("qd_detr", "castella", "clap", root=REPO_ROOT / "configs")
    theirs = load_config("qd_detr", "castella", "clap", root=lighthouse_configs_dir)
    assert ours == theirs
    assert ours.max_a_l == 300 and ours.max_v_l == 300


def test_layer_precedence(tmp_path: Path):
    for sub in ("feature", "model", "dataset"):
        (tmp_path / sub).mkdir()
    (tmp_path / "base.yml").write_text(
        "lr: 1\nbsz: 1\nwd: 1\nseed: 1\nresults_dir: r\nckpt_filename: x\n"
        "train_log_filename: t\neval_log_filename: e\n"
    )
    (tmp_path / "feature" / "f.yml").write_text(
        "bsz: 2\nwd: 2\nseed: 2\nt_feat_type: f\na_feat_types: f\n"
    )
    (tmp_path / "model" / "m.yml").write_text("wd: 3\nseed: 3\nmodel_name: m\n")
    (tmp_path / "dataset" / "d.yml").write_text("seed: 4\ndset_name: d\n")
    cfg = load_config("m", "d", "f", root=tmp_path)
    assert (cfg.lr, cfg.bsz, cfg.wd, cfg.seed) == (1, 2, 3, 4)
    assert cfg.results_dir == "r/m/d/f"
    assert cfg.a_feat_dirs == ["features/d/f"] and cfg.t_feat_dir == "features/d/f_text"


def test_overrides_keep_types_and_reject_unknown_keys():
    cfg = {"lr": 0.0001, "bsz": 32, "aux_loss": True, "device": "cuda", "train_path": None}
    apply_overrides(
        cfg, ["lr=3e-4", "bsz=16", "aux_loss=false", "device=cpu", "train_path=a.jsonl"]
    )
    assert cfg == {
        "lr": 3e-4,
        "bsz": 16,
        "aux_loss": False,
        "device": "cpu",
        "train_path": "a.jsonl",
    }
    assert isinstance(cfg["bsz"], int)
    with pytest.raises(ValueError, match="unknown config key 'lrr'; did you mean lr"):
        apply_overrides(cfg, ["lrr=1"])
    with pytest.raises(ValueError, match="expected an integer"):
        apply_overrides(cfg, ["bsz=1.5"])
    with pytest.raises(ValueError, match="expected true/false"):
        apply_overrides(cfg, ["aux_loss=maybe"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(cfg, ["lr"])


def test_missing_and_invalid_layers_name_the_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="base.yml: config file not found"):
        load_config("qd_detr", "clotho-moment", "clap", root=tmp_path)
    (tmp_path / "base.yml").write_text("a: [1,\n")
    with pytest.raises(ValueError, match="base.yml: invalid YAML"):
        load_config("qd_detr", "clotho-moment", "clap", root=tmp_path)


def test_save_config_round_trip(tmp_path: Path):
    import yaml

    cfg = load_config("qd_detr", "clotho-moment", "clap")
    save_config(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == dict(cfg)


def test_unknown_yaml_keys_name_the_file_and_suggest(tmp_path: Path):
    import shutil

    root = tmp_path / "configs"
    shutil.copytree(REPO_ROOT / "configs", root)
    custom = root / "dataset" / "custom.yml"
    custom.write_text(custom.read_text() + "lr_dorp: 10\n")
    with pytest.raises(
        ValueError, match=r"custom.yml: unknown config key 'lr_dorp'; did you mean lr_drop"
    ):
        load_config("qd_detr", "custom", "clap", root=root)


def test_lighthouse_keys_this_project_ignores_are_listed_not_refused(lighthouse_configs_dir):
    import yaml

    from lighthouse_audio.config_keys import IGNORED_KEYS, USED_KEYS

    in_tree = {
        key
        for path in lighthouse_configs_dir.rglob("*.yml")
        for key in (yaml.safe_load(path.read_text()) or {})
    }
    assert in_tree <= set(USED_KEYS) | set(IGNORED_KEYS)  # Lighthouse's whole tree is accepted
    assert "eval_split_name" in IGNORED_KEYS
    assert {"model_ema", "ema_decay"} <= set(USED_KEYS)  # Lighthouse's per-epoch average
    assert not set(USED_KEYS) & set(IGNORED_KEYS)
