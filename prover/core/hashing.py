"""The digests zkinfer computes: SHA-256 of bytes and files, and the canonical JSON they cover.

Every content address (model id, bundle digest, file digests, calibration digest) is made here,
so two modules can never disagree on how a document is serialised before it is hashed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["canonical_json", "sha256_bytes", "sha256_file", "sha256_json", "sha256_text"]

_CHUNK = 1 << 20


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces) for digests."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a string's UTF-8 bytes."""
    return sha256_bytes(text.encode())


def sha256_json(obj: Any) -> str:
    """Hex SHA-256 of the canonical JSON of ``obj``."""
    return sha256_bytes(canonical_json(obj))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
