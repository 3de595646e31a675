"""Reading members of Qt binary resource files (``.rcc``) through ``PackageReader``."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lighthouse_audio.demo.debian import PackageReader, RccArchive

REAL_RCC = Path("/tmp/sounds_work/gcompris/root/usr/share/gcompris-qt/rcc/instruments.rcc")
REAL_PIANO = "gcompris/src/activities/instruments/resource/piano.ogg"


def _wav_bytes(signal, rate):
    buf = io.BytesIO()
    sf.write(buf, signal, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _rcc(files, version=3, zstd=()):
    """A Qt resource file holding ``{path: (bytes, compress)}``; paths in ``zstd`` get the
    zstd flag (their bytes are stored as they are). CRC-32 stands in for Qt's name hash, which
    the reader does not use."""
    tree = {}
    for path in files:
        node = tree
        for part in path.split("/")[:-1]:
            node = node.setdefault(part, {})
        node[path.split("/")[-1]] = path
    names, name_offsets = b"", {}

    def name_offset(name):
        nonlocal names
        if name not in name_offsets:
            name_offsets[name] = len(names)
            encoded = name.encode("utf-16-be")
            names += struct.pack(">HI", len(encoded) // 2, zlib.crc32(encoded)) + encoded
        return name_offsets[name]

    # Breadth first, so each folder's children are contiguous: (name, subtree or path) per node.
    nodes, data = [("", tree)], b""
    records, i = [], 0
    while i < len(nodes):
        name, content = nodes[i]
        offset = name_offset(name) if i else 0
        if isinstance(content, dict):
            records.append(struct.pack(">IHII", offset, 0x02, len(content), len(nodes)))
            nodes.extend(sorted(content.items()))
        else:
            raw, compress = files[content]
            flags = 0x04 if content in zstd else 0x01 if compress else 0x00
            blob = struct.pack(">I", len(raw)) + zlib.compress(raw) if compress else raw
            records.append(struct.pack(">IHII", offset, flags, 0, len(data)))
            data += struct.pack(">I", len(blob)) + blob
        if version >= 2:
            records[-1] += struct.pack(">Q", 0)
        i += 1
    header_size = 24 if version >= 3 else 20
    tree_bytes = b"".join(records)
    tree_at, data_at = header_size, header_size + len(tree_bytes)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0x01)
    return header + tree_bytes + data + names


@pytest.fixture
def signals():
    t = np.arange(8000)
    return {
        "tone": (0.5 * np.sin(t / 7)).astype(np.float32),
        "chirp": (0.3 * np.sin(t * t / 4e5)).astype(np.float32),
    }


@pytest.mark.parametrize("version", [1, 2, 3])
def test_package_reader_reads_plain_and_zlib_members(tmp_path, signals, version):
    files = {
        "app/sounds/a/tone.wav": (_wav_bytes(signals["tone"], 16000), True),
        "app/sounds/b/deep/chirp.wav": (_wav_bytes(signals["chirp"], 16000), False),
        "app/readme.txt": (b"not audio", False),
    }
    (tmp_path / "usr").mkdir()
    (tmp_path / "usr" / "res.rcc").write_bytes(_rcc(files, version=version))
    with PackageReader(tmp_path) as reader:
        tone = reader.read_audio("usr/res.rcc:app/sounds/a/tone.wav", 16000)
        chirp = reader.read_audio("usr/res.rcc:app/sounds/b/deep/chirp.wav", 16000)
        assert reader.read_bytes("usr/res.rcc:app/readme.txt") == b"not audio"
        assert (
            reader.read_bytes("usr/res.rcc:/app/sounds/a/tone.wav")
            == files["app/sounds/a/tone.wav"][0]
        )
    np.testing.assert_allclose(tone, signals["tone"], atol=1 / 32768)
    np.testing.assert_allclose(chirp, signals["chirp"], atol=1 / 32768)


def test_missing_members_folders_and_zstd_give_one_line_errors(tmp_path, signals):
    wav = _wav_bytes(signals["tone"], 16000)
    files = {"app/a/tone.wav": (wav, False), "app/z.wav": (wav, False)}
    path = tmp_path / "res.rcc"
    path.write_bytes(_rcc(files, zstd={"app/z.wav"}))
    with PackageReader(tmp_path) as reader:
        with pytest.raises(ValueError, match=r"^res\.rcc: no member app/a/x\.wav$"):
            reader.read_bytes("res.rcc:app/a/x.wav")
        with pytest.raises(ValueError, match=r"^res\.rcc: no member app/a/tone\.wav/x$"):
            reader.read_bytes("res.rcc:app/a/tone.wav/x")
        with pytest.raises(ValueError, match=r"^res\.rcc: app/a is a folder"):
            reader.read_bytes("res.rcc:app/a")
        with pytest.raises(ValueError, match=r"^res\.rcc: app/z\.wav is zstd-compressed"):
            reader.read_bytes("res.rcc:app/z.wav")
    (tmp_path / "bad.rcc").write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(ValueError, match="bad.rcc: not a Qt resource file"):
        RccArchive(tmp_path / "bad.rcc")
    (tmp_path / "cut.rcc").write_bytes(_rcc(files)[:40])
    with pytest.raises(ValueError, match="^cut.rcc: cannot read app/a/tone.wav"):
        RccArchive(tmp_path / "cut.rcc").read("app/a/tone.wav")


@pytest.mark.skipif(not REAL_RCC.is_file(), reason="no unpacked gcompris-qt-data")
def test_reads_a_real_gcompris_member():
    root = REAL_RCC.parents[4]
    with PackageReader(root) as reader:
        piano = reader.read_audio(f"{REAL_RCC.relative_to(root)}:{REAL_PIANO}", 32000)
    assert piano.dtype == np.float32 and len(piano) > 32000 // 2
    assert 0.01 < np.abs(piano).max() <= 1.0
