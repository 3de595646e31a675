"""Downloads against a real HTTP server on 127.0.0.1: complete, resumed, refused, offline."""

from __future__ import annotations

import errno
import hashlib

import pytest

from lighthouse_audio.cli.main import main
from lighthouse_audio.hub import (
    PRETRAINED,
    Artifact,
    ChecksumError,
    DownloadError,
    OfflineError,
    fetch,
    resolve_checkpoint,
)
from lighthouse_audio.hub.download import download_url
from lighthouse_audio.hub.fetch import local_path

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()


def test_download_is_complete_and_atomic(http_server, online, tmp_path):
    base, served = http_server
    served.files["/files/model.ckpt"] = DATA
    dest = tmp_path / "out" / "model.ckpt"
    assert download_url(f"{base}/files/model.ckpt", dest, progress=False) == SHA
    assert dest.read_bytes() == DATA
    assert not dest.with_name("model.ckpt.partial").exists()


def test_interrupted_download_resumes_where_it_stopped(http_server, online, tmp_path):
    base, served = http_server
    served.files["/big"] = DATA
    served.cut_after["/big"] = 300_000
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError, match="interrupted after 300000 of 1048576 bytes; run again"):
        download_url(f"{base}/big", dest, progress=False)
    assert not dest.exists()  # never a half-written file under the real name
    assert dest.with_name("big.bin.partial").stat().st_size == 300_000
    assert download_url(f"{base}/big", dest, expected_sha256=SHA, progress=False) == SHA
    assert dest.read_bytes() == DATA
    assert served.requests[-1] == ("GET", "/big", "bytes=300000-")


def test_checksum_mismatch_is_refused_and_removed(http_server, online, tmp_path):
    base, served = http_server
    served.files["/f"] = DATA
    dest = tmp_path / "f"
    with pytest.raises(DownloadError, match="checksum mismatch .* the download was removed"):
        download_url(f"{base}/f", dest, expected_sha256="0" * 64, progress=False)
    assert not dest.exists() and not dest.with_name("f.partial").exists()


def test_missing_file_and_dead_server_are_one_line_errors(http_server, online, tmp_path):
    base, _ = http_server
    with pytest.raises(DownloadError, match=r"/nope: HTTP 404") as err:
        download_url(f"{base}/nope", tmp_path / "x", progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(DownloadError, match="cannot download"):
        download_url("http://127.0.0.1:9/x", tmp_path / "x", progress=False, timeout=2)


def test_full_disk_removes_the_partial_file(http_server, online, tmp_path, monkeypatch):
    base, served = http_server
    served.files["/f"] = DATA

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lighthouse_audio.hub.download.os.fsync", no_space)
    dest = tmp_path / "f"
    with pytest.raises(DownloadError, match="disk full .* partial download was removed"):
        download_url(f"{base}/f", dest, progress=False)
    assert not dest.exists() and not dest.with_name("f.partial").exists()


@pytest.mark.parametrize("switch", ["LIGHTHOUSE_AUDIO_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_mode_downloads_nothing_and_says_where_to_put_the_file(
    http_server, online, tmp_path, monkeypatch, switch
):
    base, served = http_server
    served.files["/m.ckpt"] = DATA
    artifact = Artifact("test-offline", "checkpoint", "m.ckpt", "test", url=f"{base}/m.ckpt")
    monkeypatch.setenv(switch, "1")
    with pytest.raises(OfflineError) as err:
        fetch(artifact, progress=False)
    assert str(err.value) == (
        f"test-offline: not in the cache and downloads are off ({switch}=1); "
        f"download {base}/m.ckpt and put it at {local_path(artifact)}"
    )
    assert served.requests == []
    with pytest.raises(OfflineError, match="downloads are off"):
        download_url(f"{base}/m.ckpt", tmp_path / "m", progress=False)


@pytest.fixture
def named_checkpoint(http_server, online):
    base, served = http_server
    served.files["/records/1/files/test.ckpt"] = DATA
    artifact = Artifact(
        "test-named",
        "checkpoint",
        "test.ckpt",
        "a test file",
        url=f"{base}/records/1/files/test.ckpt",
    )
    PRETRAINED.register(artifact)
    yield artifact, served
    PRETRAINED.unregister(artifact.name)


def test_a_name_downloads_once_and_is_checked_on_every_use(named_checkpoint):
    artifact, served = named_checkpoint
    path = resolve_checkpoint("test-named", progress=False)
    assert path == local_path(artifact) and path.read_bytes() == DATA
    assert resolve_checkpoint("test-named", progress=False) == path
    assert [r[0] for r in served.requests] == ["GET"]  # the second use never touched the server
    with open(path, "r+b") as f:  # a file changed behind the package's back
        f.write(b"\xff")
    with pytest.raises(ChecksumError, match="differs from the .* recorded when test-named"):
        resolve_checkpoint("test-named", progress=False)


def test_published_checksum_is_enforced(http_server, online):
    base, served = http_server
    served.files["/p"] = DATA
    good = Artifact("p", "weights", "p.bin", "x", url=f"{base}/p", sha256=SHA)
    assert fetch(good, progress=False).read_bytes() == DATA
    bad = Artifact("q", "weights", "q.bin", "x", url=f"{base}/p", sha256="f" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(bad, progress=False)
    assert not local_path(bad).exists()


def test_hub_files_come_through_huggingface_hub(http_server, online, monkeypatch, tmp_path):
    pytest.importorskip("huggingface_hub")
    base, served = http_server
    served.files["/owner/repo/resolve/main/weights.pth"] = DATA
    monkeypatch.setenv("HF_ENDPOINT", base)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    artifact = Artifact("hub-test", "weights", "weights.pth", "x", hf_repo="owner/repo",
                        hf_filename="weights.pth")  # fmt: skip
    path = fetch(artifact, progress=False)
    assert path.read_bytes() == DATA and str(tmp_path / "hf") in str(path)
    direct = resolve_checkpoint("hf://owner/repo/weights.pth", progress=False)
    assert direct.read_bytes() == DATA
    count = len(served.requests)
    assert fetch(artifact, progress=False) == path  # from the hub cache: no request
    assert len(served.requests) == count
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="not in the Hugging Face cache"):
        resolve_checkpoint("hf://owner/repo/other.pth", progress=False)


def test_cli_models_lists_and_fetches(named_checkpoint, capsys):
    artifact, _ = named_checkpoint
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "test-named" in listing and "not downloaded" in listing
    assert "clap_qd_detr_clotho-moment" in listing and "msclap-2023" in listing
    assert main(["models", "--fetch", "test-named", "--no-progress"]) == 0
    assert str(local_path(artifact)) in capsys.readouterr().out
    assert main(["models"]) == 0
    assert str(local_path(artifact)) in capsys.readouterr().out


def test_unknown_name_is_a_usage_error(capsys):
    assert main(["models", "--fetch", "nope"]) == 2
    assert "unknown pretrained file 'nope'" in capsys.readouterr().err
