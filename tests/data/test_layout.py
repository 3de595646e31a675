"""The feature layout is spelled once, and names from annotation files cannot leave a folder."""

import pytest

from lighthouse_audio.data.feature_store import FeatureStore
from lighthouse_audio.data.layout import FeatureLayout, check_file_name, find_audio_files


def test_lighthouse_layout(tmp_path):
    layout = FeatureLayout(tmp_path, "clap")
    assert layout.audio_path("Wildlife_0.0_60.0") == tmp_path / "clap" / "Wildlife_0.0_60.0.npz"
    assert layout.text_path(37612) == tmp_path / "clap_text" / "qid37612.npz"
    assert layout.manifest_path == tmp_path / "clap" / "manifest.json"


@pytest.mark.parametrize("name", ["../../../tmp/x", "a/b", "..", ".hidden", "a\\b", "", "a\x00b"])
def test_names_that_would_leave_their_folder_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="cannot be a file name"):
        check_file_name(name, "vid")
    with pytest.raises(ValueError, match="qid .* cannot be a file name"):
        FeatureLayout(tmp_path, "clap").text_path(name)
    store = FeatureStore(tmp_path, "features", max_len=None)
    with pytest.raises(ValueError, match="cannot be a file name"):
        store.get(name)


def test_audio_files_by_extension_any_case(tmp_path):
    for name in ("a.WAV", "b.flac", "c.opus", "d.txt", "sub/e.ogg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in find_audio_files(tmp_path)] == ["a.WAV", "b.flac", "c.opus", "e.ogg"]
