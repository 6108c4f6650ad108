"""The digests zkinfer computes: SHA-256 of bytes and files, and the canonical JSON they cover.

Every content address (model id, bundle digest, file digests, calibration digest) is made here,
so two modules can never disagree on how a document is serialised before it is hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FileIdentity",
    "bytes_hashed",
    "canonical_json",
    "sha256_bytes",
    "sha256_file",
    "sha256_file_once",
    "sha256_json",
    "sha256_text",
]

_CHUNK = 1 << 20
#: A file changed less than this long before it was hashed is never remembered: timestamps are
#: coarse (a kernel tick), so a rewrite within the same tick could keep every field of the
#: identity (git's "racily clean" entries). Any later write sets a ctime past this margin.
RACY_MARGIN_NS = 2_000_000_000


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
    global _hashed
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)  # releases the GIL: other threads run while a key is hashed
            with _LOCK:
                _hashed += len(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class FileIdentity:
    """What changes whenever a file is replaced or written: ``rename`` over it gives another
    inode, writing in place sets a new ctime (which no user can set back), truncation a size."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        """The identity of the file at ``path`` now (``stat`` follows symlinks, like ``open``)."""
        st = os.stat(path)
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def settled_at(self, ns: int) -> bool:
        """Whether the file had been left alone for :data:`RACY_MARGIN_NS` at time ``ns``
        (``time.time_ns()``): only then may what was read from it be remembered by identity."""
        return ns - max(self.mtime_ns, self.ctime_ns) >= RACY_MARGIN_NS


_LOCK = threading.Lock()
_KNOWN: dict[str, tuple[FileIdentity, str]] = {}
_hashed = 0


def bytes_hashed() -> int:
    """How many bytes :func:`sha256_file` has read in this process (counted work, for tests and
    profiles: a digest served from memory reads none)."""
    return _hashed


def sha256_file_once(path: Path) -> str:
    """Hex SHA-256 of a file, read once per process per file identity.

    The digest is remembered with the file's :class:`FileIdentity` (device, inode, size, mtime,
    ctime) taken before and after reading it, and served again only while the identity is
    unchanged: a file replaced, rewritten, truncated or touched is read again. A file changed
    less than :data:`RACY_MARGIN_NS` before it was read is never remembered.
    """
    key = os.path.abspath(path)
    before = FileIdentity.of(path)
    with _LOCK:
        known = _KNOWN.get(key)
    if known is not None and known[0] == before:
        return known[1]
    started = time.time_ns()
    digest = sha256_file(path)
    after = FileIdentity.of(path)
    with _LOCK:
        if after == before and after.settled_at(started):
            _KNOWN[key] = (after, digest)
        else:
            _KNOWN.pop(key, None)
    return digest
