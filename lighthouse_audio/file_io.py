"""Files written whole or not at all, and JSON Lines read with ``file:line`` errors.

Every file the package writes goes through :func:`atomic_write`: the content goes to a uniquely
named temporary file beside the target (opened with ``"x"``, so it gets the usual umask mode),
is flushed and fsync'd, then renamed over the target, and the folder is fsync'd. A reader never
sees a half-written file, a crash never leaves one under the real name, and no temporary file
survives an error.

>>> write_json({"MR-full-mAP": 12.6}, "metrics.json")  # doctest: +SKIP
>>> write_jsonl([{"qid": 1}], "preds.jsonl")  # one object per line, each ending in a newline
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "empty_file_problem",
    "iter_jsonl",
    "load_jsonl",
    "remove_stale_temporaries",
    "save_npz",
    "save_torch",
    "write_bytes",
    "write_json",
    "write_jsonl",
    "write_text",
]

PathLike = str | os.PathLike


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: PathLike, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` fills a temporary file (same suffix as ``path``: numpy and matplotlib
    look at it), which then replaces ``path``. Parent folders are created. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        open(tmp, "xb").close()  # noqa: SIM115 - claim the name with the umask's mode
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


_TEMPORARY = re.compile(r"^\.(?P<stem>.*)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp(?P<suffix>\.[^.]*)?$")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: PathLike, recursive: bool = False) -> list[Path]:
    """Delete the temporaries :func:`atomic_write` left in ``folder`` (and below it, with
    ``recursive``) when its process was killed mid-write (SIGKILL skips ``finally``). A
    temporary of a live process is kept: it is still being written. Returns what was removed."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.rglob(".*.tmp*") if recursive else folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and entry.is_file() and not _process_alive(int(match["pid"])):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def write_bytes(path: PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(obj: Any, path: PathLike, indent: int = 4) -> Path:
    """``json.dumps(obj, indent=indent)`` (4: byte-identical to Lighthouse's metrics files)."""
    return write_text(path, json.dumps(obj, indent=indent))


def write_jsonl(lines: Iterable[Any], path: PathLike, ensure_ascii: bool = True) -> Path:
    """JSON Lines, each line ending in a newline (so files concatenate into valid JSON Lines).

    ``ensure_ascii`` as ``json.dumps`` (on: what Lighthouse writes; off keeps annotation text
    as it was read)."""
    text = "".join(json.dumps(line, ensure_ascii=ensure_ascii) + "\n" for line in lines)
    return write_text(path, text)


def save_npz(path: PathLike, **arrays: Any) -> Path:
    import numpy as np

    return atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def save_torch(obj: Any, path: PathLike) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def iter_jsonl(
    path: PathLike, error: type[Exception] = ValueError, objects: bool = True
) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON Lines file.

    Every problem is one line naming the file and line: a missing or unreadable file, a line
    that is not UTF-8, not valid JSON or (with ``objects``) not a JSON object. They are raised as
    ``error`` (a caller's own ``ValueError`` subclass); a missing file is ``FileNotFoundError``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise error(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(
                    f"{path}:{line_number}: not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                    f"{exc.start + 1})"
                ) from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(
                    f"{path}:{line_number}: invalid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if objects and not isinstance(value, dict):
                raise error(
                    f"{path}:{line_number}: expected a JSON object, got {type(value).__name__}"
                )
            yield line_number, value


def empty_file_problem(path: PathLike) -> str:
    """Why a JSON Lines file gave nothing: "the file is empty" or "only blank lines"."""
    return "the file is empty" if Path(path).stat().st_size == 0 else "only blank lines"


def load_jsonl(path: PathLike) -> list[dict]:
    """Every object of a JSON Lines file (see :func:`iter_jsonl` for the errors)."""
    return [record for _, record in iter_jsonl(path)]
