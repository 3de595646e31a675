"""The shipped manifest of Debian sources, and rebuilding sounds from packages (offline)."""

import io
import json
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.demo import debian
from lighthouse_audio.demo.debian import (
    DebianError,
    PackageReader,
    crossfade_join,
    read_cat_entry,
    rebuild_sound_set,
    write_sound,
)
from lighthouse_audio.demo.debian_sources import (
    SoundSource,
    default_packages,
    load_packages,
    load_sources,
)
from lighthouse_audio.demo.sound_set import load_sound_set
from tests.conftest import SHARED

SHARED_SOUNDS = SHARED / "sounds"
needs_shared = pytest.mark.skipif(
    not (SHARED_SOUNDS / "manifest.jsonl").is_file(), reason="no shared sounds"
)


@needs_shared
def test_every_shared_sound_is_covered_by_the_shipped_manifest():
    shipped = {s.path: s for s in load_sources()}
    packages = load_packages()
    lines = (SHARED_SOUNDS / "manifest.jsonl").read_text().splitlines()
    shared_paths = {json.loads(line)["path"] for line in lines}
    assert shared_paths <= set(shipped)
    shared_packages = {shipped[p].source_package for p in shared_paths}
    # every further sound comes from a package beyond shared/sounds' (the set grows by package)
    assert all(s.source_package not in shared_packages for p, s in shipped.items()
               if p not in shared_paths)  # fmt: skip
    for line in lines:
        d = json.loads(line)
        s = shipped[d["path"]]
        assert d["source_package"] in packages, d["source_package"]
        for key in ("role", "caption", "label", "source_package", "source_file", "license"):
            assert getattr(s, key) == d[key], (d["path"], key)
        assert s.duration == pytest.approx(d["duration"])


def test_packages_records_match_the_manifest():
    sources = load_sources()
    for name, package in load_packages().items():
        mine = [s for s in sources if s.source_package == name]
        assert package.num_fg == sum(s.role == "fg" for s in mine), name
        assert package.num_bg == sum(s.role == "bg" for s in mine), name
    assert {s.source_package for s in sources} <= set(load_packages())


def test_default_packages_leave_out_the_large_ones_and_give_a_usable_set():
    packages = load_packages()
    chosen = default_packages()
    assert all(packages[p].deb_size < 200e6 for p in chosen)
    assert sum(packages[p].deb_size for p in chosen) < 500e6
    assert not {"0ad-data", "unknown-horizons"} & set(chosen)  # 1.4 GB, 250 MB
    sources = [s for s in load_sources() if s.source_package in chosen]
    assert sum(s.role == "fg" for s in sources) >= 300
    # one ambience that holds a 60 s test recording for each of train, val and test
    assert sum(s.role == "bg" and s.duration >= 60 for s in sources) >= 3


HELD_BACK = {  # held-back evaluation recordings are built from these: never a source
    "widelands-data", "megaglest-data", "flightgear-data-base", "wesnoth-1.16-data",
    "redeclipse-data", "supertuxkart-data", "lincity-ng-data",
}  # fmt: skip


def test_no_source_comes_from_a_held_back_package():
    assert not {s.source_package for s in load_sources()} & HELD_BACK
    assert not set(load_packages()) & HELD_BACK


def test_sources_are_well_formed():
    paths = [s.path for s in load_sources()]
    assert len(paths) == len(set(paths))
    for s in load_sources():
        assert s.role in ("fg", "bg")
        assert s.caption.strip() and s.license
        if s.captions is not None:  # paraphrases: the primary caption first, no repeats
            assert s.captions[0] == s.caption and len(set(s.captions)) == len(s.captions)
        assert not s.source_file.startswith("/")
        assert SoundSource.from_dict(s.to_dict()) == s


def _wav_bytes(signal, rate, channels=1):
    buf = io.BytesIO()
    data = np.repeat(signal[:, None], channels, axis=1) if channels > 1 else signal
    sf.write(buf, data, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _cat(entries):
    """An OpenTTD sound catalogue holding ``(name, wav bytes)`` entries."""
    table, body = [], b""
    offset = 8 * len(entries)
    for name, wav in entries:
        raw = name.encode() + b"\0"
        table.append((offset + len(body), len(wav)))
        body += bytes([len(raw)]) + raw + wav
    head = b"".join(
        struct.pack("<II", (o | 0x80000000) if i == 0 else o, size)
        for i, (o, size) in enumerate(table)
    )
    return head + body


def test_read_cat_entry(tmp_path):
    a, b = _wav_bytes(np.zeros(100), 8000), _wav_bytes(np.ones(50) * 0.5, 11025)
    path = tmp_path / "s.cat"
    path.write_bytes(_cat([('"A". By x.', a), ('"B". By y.', b)]))
    assert read_cat_entry(path, 1) == b
    assert read_cat_entry(path, 0) == a
    with pytest.raises(ValueError, match="no entry 2"):
        read_cat_entry(path, 2)


def test_package_reader_reads_files_zip_members_and_cat_entries(tmp_path):
    tone = (0.5 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    (tmp_path / "usr").mkdir()
    (tmp_path / "usr" / "a.wav").write_bytes(_wav_bytes(tone, 16000, channels=2))
    with zipfile.ZipFile(tmp_path / "usr" / "pack.pk3", "w") as z:
        z.writestr("sound/b.wav", _wav_bytes(tone, 16000))
    (tmp_path / "usr" / "s.cat").write_bytes(_cat([('"X"', _wav_bytes(tone, 16000))]))
    with PackageReader(tmp_path) as reader:
        plain = reader.read_audio("usr/a.wav", 32000)
        member = reader.read_audio("usr/pack.pk3:sound/b.wav", 32000)
        entry = reader.read_audio('usr/s.cat:entry 00 "X"', 16000)
        with pytest.raises(FileNotFoundError):
            reader.read_bytes("usr/missing.wav")
    assert len(plain) == len(member) == 32000  # mono, resampled
    np.testing.assert_allclose(entry, tone, atol=1e-4)


def test_crossfade_join_keeps_length_and_level():
    joined = crossfade_join([np.ones(32000), np.ones(32000)], 16000, seconds=1.0)
    assert len(joined) == 48000
    np.testing.assert_allclose(joined, 1.0, atol=1e-6)
    assert len(crossfade_join([np.ones(10)], 16000)) == 10


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_write_sound_long_files_and_clipping(tmp_path, suffix):
    signal = np.random.default_rng(0).normal(0, 0.7, 32000 * 40).astype(np.float32)
    path = tmp_path / "x" / f"s{suffix}"
    write_sound(path, signal, 32000)
    info = sf.info(path)
    assert (info.samplerate, info.channels) == (32000, 1)
    assert abs(info.frames - len(signal)) < 32000 * 0.01
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_without_apt_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(debian.shutil, "which", lambda tool: None)
    with pytest.raises(DebianError, match="pass --sounds DIR") as info:
        rebuild_sound_set(
            tmp_path / "sounds", ["sound-theme-freedesktop"], tmp_path, progress=False
        )
    assert "\n" not in str(info.value)


def test_unknown_package_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no sounds are listed for package"):
        rebuild_sound_set(tmp_path, ["not-a-package"], tmp_path, progress=False)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_rebuild_from_a_local_deb_then_reuse(tmp_path, monkeypatch):
    """A real .deb built here stands in for apt: unpacked, converted, manifest written; a second
    run downloads and unpacks nothing."""
    tone = (0.3 * np.sin(np.arange(22050) / 3)).astype(np.float32)
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fake-sounds\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: nobody <nobody@example.org>\nDescription: test\n"
    )
    (root / "usr" / "share" / "fake").mkdir(parents=True)
    (root / "usr" / "share" / "fake" / "beep.wav").write_bytes(_wav_bytes(tone, 22050, 2))
    with zipfile.ZipFile(root / "usr" / "share" / "fake" / "amb.zip", "w") as z:
        z.writestr("a.wav", _wav_bytes(tone[::-1].copy(), 22050))
        z.writestr("b.wav", _wav_bytes(tone, 22050))
    doc = root / "usr" / "share" / "doc" / "fake-sounds"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nLicense: CC0-1.0\n")
    debs = tmp_path / "cache" / "debs"
    debs.mkdir(parents=True)
    deb = debs / "fake-sounds_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)],
                   check=True, capture_output=True)  # fmt: skip

    source = SoundSource(
        path="fg/misc/fake__beep.flac", role="fg", caption="a short beep", label="misc/beep",
        duration=1.0, source_package="fake-sounds", source_file="usr/share/fake/beep.wav",
        license="CC0-1.0",
    )  # fmt: skip
    hum = SoundSource(
        path="bg/hum/fake__hum.ogg", role="bg", caption="a hum", label="ambience/hum",
        duration=1.0, source_package="fake-sounds", license="CC0-1.0",
        source_file="usr/share/fake/amb.zip:a.wav + usr/share/fake/amb.zip:b.wav",
    )  # fmt: skip
    package = load_packages()["sound-theme-freedesktop"]
    fake = type(package)(**{**package.__dict__, "name": "fake-sounds", "version": "1.0-1"})
    monkeypatch.setattr(debian, "load_sources", lambda: (source, hum))
    monkeypatch.setattr(debian, "load_packages", lambda: {"fake-sounds": fake})
    out = tmp_path / "cache" / "sounds"
    got = rebuild_sound_set(out, ["fake-sounds"], tmp_path / "cache", progress=False, log=print)
    assert got == [source, hum]
    audio, rate = sf.read(out / source.path)
    assert rate == 32000 and audio.ndim == 1 and len(audio) == 32000
    assert sf.info(out / hum.path).duration == pytest.approx(1.0, abs=0.01)  # 1 s crossfade
    assert (out / "licenses" / "fake-sounds.copyright").read_text().startswith("Files: *")
    listed = load_sound_set(out)
    assert [r.key for r in listed] == [source.path, hum.path]
    assert listed[0].caption == "a short beep"

    def no_download(*args, **kwargs):
        raise AssertionError("a second run must reuse the converted files")

    monkeypatch.setattr(debian, "download_deb", no_download)
    monkeypatch.setattr(debian, "_convert_package", no_download)
    again = rebuild_sound_set(out, ["fake-sounds"], tmp_path / "cache", progress=False)
    assert again == [source, hum]
    assert not list(Path(tmp_path / "cache" / "tmp").glob("*"))  # unpack folders are removed
