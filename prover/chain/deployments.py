"""The record of what ``zkinfer deploy`` deployed on each chain, in the data directory.

Kept apart from :mod:`prover.chain.deploy` so that a reader of the record (the service's
``GET /v1/models``) does not import web3: its dependency py_ecc raises the interpreter's recursion
limit to 100,000 on import, after which a request body of nested brackets overflows the C stack
of the process that parses it (see :mod:`prover.core.jsonio`).
"""

from __future__ import annotations

import json
from typing import Any

from prover.settings import Settings, get_settings

__all__ = ["Deployments"]


class Deployments:
    """The addresses zkinfer deployed on one chain, kept in the data directory (``home``, by
    default the one ``$ZKINFER_HOME`` names)."""

    def __init__(self, chain_id: int, settings: Settings | None = None) -> None:
        self.chain_id = chain_id
        self.path = (settings or get_settings()).deployments_file(chain_id)
        try:
            self.doc: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.doc = {}

    def get(self, kind: str, key: str = "") -> str | None:
        """A recorded address (``kind`` "market", or "verifiers" or "registrants" with a model id
        as ``key``)."""
        entry = self.doc.get(kind)
        if key:
            entry = entry.get(key) if isinstance(entry, dict) else None
        return entry if isinstance(entry, str) else None

    def put(self, kind: str, address: str, key: str = "") -> None:
        """Record an address and write the file."""
        if key:
            self.doc.setdefault(kind, {})[key] = address
        else:
            self.doc[kind] = address
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)
