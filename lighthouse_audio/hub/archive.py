"""One named file out of a downloaded zip, without trusting the zip's own paths.

Release assets such as M2D's weights are zips holding ``FOLDER/FILE``. The catalog says which
member is wanted; only that member is read, and where it goes is decided by the catalog entry,
never by a name inside the archive, so no ``..``, absolute path or link in a zip can write
outside the cache. The member is streamed (its CRC is checked at the end), written through
``file_io.atomic_write`` and so never left half-written under its real name.
"""

from __future__ import annotations

import errno
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from lighthouse_audio.file_io import atomic_write
from lighthouse_audio.hub.download import DownloadError

__all__ = ["member_path", "unpack_member"]

BLOCK = 1 << 20


def member_path(member: str) -> PurePosixPath:
    """``member`` as a relative POSIX path of plain parts; ``ValueError`` for anything that
    could leave the folder it is joined to (absolute, ``..``, backslashes, empty parts)."""
    path = PurePosixPath(member)
    parts = member.split("/")
    if (
        not member
        or path.is_absolute()
        or "\\" in member
        or ":" in parts[0]
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"archive member {member!r} is not a plain relative path")
    return path


def unpack_member(archive: Path, member: str, dest: Path) -> Path:
    """Write ``member`` of the zip ``archive`` to ``dest`` (atomically) and return ``dest``.

    One-line :class:`DownloadError` when the archive is unreadable or damaged (it is then
    removed, so the next attempt downloads it again), lacks the member, holds it as a folder or
    a link, or the disk cannot take it.
    """
    member_path(member)  # a catalog entry naming an unsafe member is refused outright
    try:
        with zipfile.ZipFile(archive) as zipped:
            info = _find(zipped, member, archive)
            free = shutil.disk_usage(_existing_parent(dest)).free
            if info.file_size > free:
                raise DownloadError(
                    f"{archive}: {member} needs {info.file_size} bytes, {dest.parent} has {free} "
                    "free"
                )

            def copy(tmp: Path) -> None:
                with zipped.open(info) as source, open(tmp, "wb") as out:
                    shutil.copyfileobj(source, out, BLOCK)

            atomic_write(dest, copy)
    except (zipfile.BadZipFile, EOFError) as err:  # truncated, not a zip, or a CRC mismatch
        archive.unlink(missing_ok=True)
        raise DownloadError(
            f"{archive}: damaged zip ({err}); it was removed, run again to download it anew"
        ) from None
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DownloadError(f"{dest.parent}: disk full while unpacking {member}") from None
        raise DownloadError(f"{archive}: cannot unpack {member} to {dest} ({err})") from None
    return dest


def _find(zipped: zipfile.ZipFile, member: str, archive: Path) -> zipfile.ZipInfo:
    for info in zipped.infolist():
        if info.filename.removeprefix("./") == member:
            if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                raise DownloadError(f"{archive}: {member} is a folder or a link, not a file")
            return info
    names = [info.filename for info in zipped.infolist()[:3]]
    raise DownloadError(f"{archive}: no {member} inside (it holds {', '.join(names) or 'nothing'})")


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path.cwd()
