"""Where the demo's sounds come from: a shipped manifest of files inside Debian packages.

``debian_sounds.jsonl`` (next to this module) lists every file of the project's shared sound set
(``shared/sounds/manifest.jsonl``) and of further packages (gcompris-qt-data, scorched3d-data,
colobot-common-sounds, openarena-data, extremetuxracer-data): its path in the set, role (``fg``
captioned event or ``bg`` ambience), caption, for most foregrounds ``captions`` (four: the
caption and three paraphrases, as Clotho gives five), label, duration, licence, the Debian
package it comes from and the path inside that package. ``source_file`` may name an archive
member, ``archive:member`` (a zip such as ``0snd.pk3``, a Qt resource file such as
``instruments.rcc``, or an OpenTTD sound catalogue, ``opensfx.cat:entry 37 "Cow"``), and a
background made of sibling loops lists them joined by ``" + "``. No audio ships with the
package: the files are rebuilt from the packages by :mod:`lighthouse_audio.demo.debian`.

``debian_packages.json`` holds one record per package (Debian 12 version, ``.deb`` size,
licences, credit) and marks the ``default`` selection: the eleven packages under 200 MB each
(~440 MB together, 351 captioned clips, 6 ambiences, 4 of them at least 60 s long). 0ad-data
(1.4 GB) and unknown-horizons (250 MB) are opt-in.

>>> sources = load_sources()
>>> len(sources), sources[0].role, sources[0].source_package
(548, 'fg', '0ad-data')
>>> sorted(default_packages())[:2]
['colobot-common-sounds', 'extremetuxracer-data']
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "DebianPackage",
    "SoundSource",
    "default_packages",
    "load_packages",
    "load_sources",
]

SOURCES_FILE = "debian_sounds.jsonl"
PACKAGES_FILE = "debian_packages.json"
ROLES = ("fg", "bg")


@dataclass(frozen=True)
class SoundSource:
    """One file of the sound set and where it comes from. ``duration`` is in seconds."""

    path: str
    role: str
    caption: str
    label: str
    duration: float
    source_package: str
    source_file: str
    license: str
    credit: str | None = None
    captions: tuple[str, ...] | None = None  # paraphrases, the first being ``caption``

    @property
    def parts(self) -> list[str]:
        """The package files it is made of (several for joined background loops)."""
        return self.source_file.split(" + ")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("credit", "captions"):
            if d[key] is None:
                del d[key]
        if "captions" in d:
            d["captions"] = list(d["captions"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SoundSource:
        if d.get("role") not in ROLES:
            role = d.get("role")
            raise ValueError(f"{d.get('path')!r}: role must be one of {ROLES}, got {role!r}")
        fields = {k: d[k] for k in d if k in cls.__dataclass_fields__}
        if fields.get("captions") is not None:
            fields["captions"] = tuple(fields["captions"])
        return cls(**fields)


@dataclass(frozen=True)
class DebianPackage:
    """A Debian package holding sounds; ``deb_size`` is the download size in bytes."""

    name: str
    version: str
    description: str
    num_fg: int
    num_bg: int
    deb_size: int
    licenses: str
    credit: str
    default: bool


def _read_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def load_sources() -> tuple[SoundSource, ...]:
    """Every file of the shipped manifest, in manifest order."""
    lines = _read_text(SOURCES_FILE).splitlines()
    return tuple(SoundSource.from_dict(json.loads(line)) for line in lines if line.strip())


@cache
def load_packages() -> dict[str, DebianPackage]:
    """Package name -> record, from the shipped ``debian_packages.json``."""
    raw = json.loads(_read_text(PACKAGES_FILE))["packages"]
    return {name: DebianPackage(name=name, **fields) for name, fields in raw.items()}


def default_packages() -> tuple[str, ...]:
    """The packages the demo downloads unless told otherwise (all but the two largest)."""
    return tuple(name for name, p in load_packages().items() if p.default)
