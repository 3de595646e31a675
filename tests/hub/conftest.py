"""A real HTTP server on 127.0.0.1 serving fixture bytes: plain files with Range support, and
the two routes huggingface_hub uses for a hub file (HEAD for metadata, GET for the bytes)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Served:
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)  # drop the connection after N bytes
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range


class _Handler(BaseHTTPRequestHandler):
    served: Served

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _body(self) -> tuple[bytes, int, int] | None:
        path = self.path.split("?")[0]
        self.served.requests.append((self.command, path, self.headers.get("Range")))
        data = self.served.files.get(path)
        if data is None:
            self.send_error(404, "Not Found")
            return None
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            if start >= len(data):
                self.send_error(416, "Range Not Satisfiable")
                return None
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return data, start, len(data)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._body()

    def do_GET(self) -> None:  # noqa: N802
        found = self._body()
        if found is None:
            return
        data, start, _ = found
        cut = self.served.cut_after.pop(self.path.split("?")[0], None)
        end = len(data) if cut is None else min(len(data), start + cut)
        self.wfile.write(data[start:end])
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True


@pytest.fixture
def http_server():
    """``(base_url, served)``; put bytes in ``served.files["/path"]``."""
    served = Served()
    handler = type("Handler", (_Handler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Downloads allowed (tests are offline by default) into a cache of this test's own."""
    monkeypatch.delenv("LIGHTHOUSE_AUDIO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("LIGHTHOUSE_AUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
