import pytest

from lighthouse_audio.encoders.base import FeatureSpec
from lighthouse_audio.registry import (
    BASELINES,
    DATASETS,
    FEATURES,
    MODELS,
    Registry,
    check_pair,
    valid_pairs,
)


def test_register_by_decorator_name_or_spec():
    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.none")

    @reg.register
    def alpha():
        pass

    @reg.register(name="beta-1")
    def build():
        pass

    spec = reg.register(FeatureSpec("gamma", "audio"))
    assert reg.get("alpha") is alpha and reg.get("beta-1") is build and reg.get("gamma") is spec
    assert reg.names() == ["alpha", "beta-1", "gamma"]
    assert list(reg) == [alpha, build, spec] and "gamma" in reg
    assert reg.unregister("gamma") is spec and "gamma" not in reg


def test_duplicate_name_rejected():
    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.none")
    reg.register(1, name="a")
    with pytest.raises(ValueError, match="already registered"):
        reg.register(2, name="a")


def test_unknown_name_lists_known():
    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.none")
    reg.register(1, name="alpha")
    with pytest.raises(KeyError, match="unknown widget 'beta'; registered: alpha"):
        reg.get("beta")


def test_builtins_register_when_first_asked_for():
    assert "qd_detr" in MODELS.names()
    assert {"clotho-moment", "unav100-subset", "tut2017", "castella", "custom"} <= set(
        DATASETS.names()
    )
    assert {"clap", "aisfx-minilm", "laion-clap", "hf"} <= set(FEATURES.names())
    assert BASELINES.names() == ["sliding_window"]
    assert "sliding_window" not in MODELS  # a baseline is not a trainable model


def test_valid_pairs_derived_from_domains():
    pairs = valid_pairs()
    assert ("clotho-moment", "clap") in pairs
    FEATURES.register(FeatureSpec("test-video-feature", "video"))
    try:
        assert all(f != "test-video-feature" for _, f in valid_pairs())
        with pytest.raises(ValueError, match="cannot be used with feature 'test-video-feature'"):
            check_pair("clotho-moment", "test-video-feature")
    finally:
        FEATURES.unregister("test-video-feature")


def test_entry_point_plugin_is_loaded(monkeypatch):
    from importlib.metadata import EntryPoint

    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.group")
    ep = EntryPoint(name="json_plugin", value="json:dumps", group="lighthouse_audio.tests.group")
    monkeypatch.setattr(
        "lighthouse_audio.registry.entry_points",
        lambda group: [ep] if group == reg.entry_point_group else [],
    )
    import json

    assert reg.get("json_plugin") is json.dumps


def test_broken_entry_point_warns_not_crashes(monkeypatch):
    from importlib.metadata import EntryPoint

    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.group")
    reg.register(1, name="builtin")
    ep = EntryPoint(
        name="bad", value="no_such_module_xyz:thing", group="lighthouse_audio.tests.group"
    )
    monkeypatch.setattr("lighthouse_audio.registry.entry_points", lambda group: [ep])
    with pytest.warns(UserWarning, match="plugin 'bad'"):
        assert reg.names() == ["builtin"]


def test_the_registry_imports_no_plugin():
    """No cycle: plugins import the registry; the registry names its packages as strings."""
    import ast
    from pathlib import Path

    import lighthouse_audio.registry as registry

    tree = ast.parse(Path(registry.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name and name.startswith("lighthouse_audio") for name in imported)


def test_lighthouse_list_prints_plugins_and_pairs(capsys):
    from lighthouse_audio.cli.main import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    models = out.split("models:\n", 1)[1].split("\n\n", 1)[0].split("baselines:")[0]
    listed = [line.split()[0] for line in models.splitlines() if line.startswith("  ")]
    assert {"qd_detr", "moment_detr"} <= set(listed), listed
    assert "baselines:\n  sliding_window  (not trained; use lighthouse tune-baseline)" in out
    assert "  aisfx-minilm  [audio]" in out
    assert "  clotho-moment + clap" in out and "  castella + aisfx-minilm" in out


def test_unlisted_alias_is_found_but_not_listed():
    """An alias (e.g. the model_name two registered variants share) builds but is no choice."""
    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.none")
    reg.register(1, name="variant_a")
    reg.register(2, name="shared", listed=False)
    assert reg.get("shared") == 2 and reg.names() == ["variant_a"] and "shared" not in reg
    with pytest.raises(ValueError, match="already registered"):
        reg.register(3, name="shared")
    assert reg.unregister("shared") == 2
    reg.register(4, name="shared")
    assert reg.names() == ["shared", "variant_a"]
