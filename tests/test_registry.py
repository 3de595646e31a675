import pytest

import lighthouse_audio.builtins  # noqa: F401
from lighthouse_audio.registry import DATASETS, FEATURES, MODELS, Registry, check_pair, valid_pairs


def test_register_and_get():
    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.none")
    reg.register("a", domain="audio")(dict)
    assert reg.get("a") is dict
    assert reg.entry("a").meta == {"domain": "audio"}
    assert reg.names() == ["a"]


def test_duplicate_name_rejected():
    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.none")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 2)


def test_unknown_name_lists_known():
    reg = Registry("widget", entry_point_group="lighthouse_audio.tests.none")
    reg.add("alpha", 1)
    with pytest.raises(KeyError, match="unknown widget 'beta'; registered: alpha"):
        reg.get("beta")


def test_builtins_registered():
    assert "qd_detr" in MODELS.names()
    assert {"clotho-moment", "unav100-subset", "tut2017", "castella", "custom"} <= set(
        DATASETS.names()
    )
    assert "clap" in FEATURES.names()


def test_valid_pairs_derived_from_domains():
    pairs = valid_pairs()
    assert ("clotho-moment", "clap") in pairs
    FEATURES.add("test-video-feature", object(), domain="video")
    try:
        assert all(f != "test-video-feature" for _, f in valid_pairs())
        with pytest.raises(ValueError, match="cannot be used with feature 'test-video-feature'"):
            check_pair("clotho-moment", "test-video-feature")
    finally:
        FEATURES._entries.pop("test-video-feature")


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
    reg.add("builtin", 1)
    ep = EntryPoint(
        name="bad", value="no_such_module_xyz:thing", group="lighthouse_audio.tests.group"
    )
    monkeypatch.setattr("lighthouse_audio.registry.entry_points", lambda group: [ep])
    with pytest.warns(UserWarning, match="plugin 'bad'"):
        assert reg.names() == ["builtin"]


def test_lighthouse_list_prints_plugins_and_pairs(capsys):
    from lighthouse_audio.cli.main import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "models:\n  qd_detr" in out
    assert "  aisfx-minilm  [audio]" in out
    assert "  clotho-moment + clap" in out and "  castella + aisfx-minilm" in out
