"""One member out of a release zip (``hub/archive.py``): only the named file, never a path the
zip chooses, damaged archives removed."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from lighthouse_audio.hub import DownloadError
from lighthouse_audio.hub.archive import member_path, unpack_member


def _zip(entries: dict[str, bytes], link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
        if link is not None:  # a symbolic link entry, as `zip --symlinks` stores one
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(info, "/etc/passwd")
    return buffer.getvalue()


BAD_NAMES = ["", "../x", "/etc/passwd", "a//b", "a/../b", "a\\b", "C:/x", "./a"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_member_names_that_could_leave_the_folder_are_refused(bad):
    with pytest.raises(ValueError, match="not a plain relative path"):
        member_path(bad)


def test_only_the_member_is_written_where_the_caller_says(tmp_path):
    archive = tmp_path / "release.zip"
    archive.write_bytes(_zip({"../evil": b"no", "model/ckpt.pth": b"weights", "model/x": b"x"}))
    dest = tmp_path / "cache" / "model" / "ckpt.pth"
    assert unpack_member(archive, "model/ckpt.pth", dest) == dest
    assert dest.read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["ckpt.pth", "release.zip"]


def test_missing_member_and_links_are_one_line_errors(tmp_path):
    archive = tmp_path / "release.zip"
    archive.write_bytes(_zip({"model/other.pth": b"x"}, link="model/ckpt.pth"))
    with pytest.raises(DownloadError, match="is a folder or a link, not a file"):
        unpack_member(archive, "model/ckpt.pth", tmp_path / "out.pth")
    with pytest.raises(DownloadError, match=r"no model/none.pth inside \(it holds model/other"):
        unpack_member(archive, "model/none.pth", tmp_path / "out.pth")
    assert archive.exists() and not (tmp_path / "out.pth").exists()


def test_damaged_zip_is_removed(tmp_path):
    archive = tmp_path / "release.zip"
    data = bytearray(_zip({"model/ckpt.pth": b"w" * 10_000}))
    data[60:80] = b"\x00" * 20  # corrupt the stored member: CRC mismatch on reading
    archive.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="damaged zip"):
        unpack_member(archive, "model/ckpt.pth", tmp_path / "out.pth")
    assert not archive.exists() and not (tmp_path / "out.pth").exists()
