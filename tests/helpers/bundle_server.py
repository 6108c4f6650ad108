"""A real HTTP server (http.server in a thread) serving one bundle's files the way the protocol
lists them, honouring Range, with switches to misbehave: cut a response short, corrupt a file,
ignore Range. Only the download half of the protocol: the lease endpoints live in the service."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prover.core import bundle as b


@dataclass
class BundleServer:
    """What the server serves and what it saw."""

    bundle: b.Bundle
    url: str = ""
    names: tuple[str, ...] = (*b.PROVE_FILES, b.MANIFEST)
    #: name -> bytes after which the next response for that file is cut off (once)
    cut_after: dict[str, int] = field(default_factory=dict)
    #: name -> offset of a byte flipped in every response for that file
    corrupt: dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    #: list the digests of the bytes served (corruption included) rather than of the bundle's
    list_served_bytes: bool = False
    listing_override: dict[str, object] | None = None
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    sent: dict[str, int] = field(default_factory=dict)  # name -> body bytes sent

    def listing(self) -> dict[str, object]:
        if self.listing_override is not None:
            return self.listing_override
        model = self.bundle.model_id
        files = []
        for name in self.names:
            data = (
                self.served(name) if self.list_served_bytes else self.bundle.path(name).read_bytes()
            )
            files.append(
                {
                    "name": name,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "url": f"/v1/bundles/{model}/files/{name}",
                }
            )
        return {"model_id": model, "bundle_digest": self.bundle.digest, "files": files}

    def served(self, name: str) -> bytes:
        data = bytearray(self.bundle.path(name).read_bytes())
        if name in self.corrupt:
            data[self.corrupt[name]] ^= 0xFF
        return bytes(data)


def _handler(state: BundleServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def _send_json(self, status: int, doc: object) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Range")))
            model = state.bundle.model_id
            if self.path == f"/v1/bundles/{model}":
                self._send_json(200, state.listing())
                return
            m = re.fullmatch(rf"/v1/bundles/{model}/files/([^/]+)", self.path)
            if not m or m.group(1) not in state.names:
                self._send_json(404, {"title": "Not Found", "status": 404})
                return
            name = m.group(1)
            data = state.served(name)
            start = 0
            rng = self.headers.get("Range")
            if rng and not state.ignore_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))  # type: ignore[union-attr]
                if start >= len(data):
                    self._send_json(416, {"title": "Range Not Satisfiable", "status": 416})
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = bytes(data[start:])
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            cut = state.cut_after.pop(name, None)
            if cut is not None:
                body = body[:cut]
                self.close_connection = True
            self.wfile.write(body)
            state.sent[name] = state.sent.get(name, 0) + len(body)

    return Handler


@contextmanager
def serve_bundle(bundle: b.Bundle) -> Iterator[BundleServer]:
    """Serve ``bundle`` on a free localhost port for the duration of the block."""
    state = BundleServer(bundle)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def file_bytes(bundle: b.Bundle, name: str) -> bytes:
    return Path(bundle.path(name)).read_bytes()
