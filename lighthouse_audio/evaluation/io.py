"""JSON files of the evaluation: jsonl submissions and annotations in, metrics json out.

Errors are one line and name the file (and line), so the CLI can print them as they are.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any


def load_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file: one JSON object per line; blank lines are skipped.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file and line
    for a line that is not valid JSON or not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    records = []
    with path.open("r", encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}:{line_number}: malformed JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}"
                )
            records.append(record)
    return records


def save_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as ``json.dumps(obj, indent=4)``: byte-identical to Lighthouse's metrics files.

    The write is atomic: a temporary file in the same folder is renamed over ``path``, so a
    reader never sees a half-written file. Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=4)
    # A unique name opened with "x" (rather than mkstemp) so the file gets the usual umask mode.
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp_path.open("x", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
