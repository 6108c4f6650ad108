"""What the chain worker reports for each request it looks at, and the cursor it keeps."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prover.chain.client import TxResult
from prover.settings import get_settings

__all__ = ["Reporter", "WorkerCursor", "WorkerOutcome"]

Reporter = Callable[["WorkerOutcome"], None]


@dataclass(frozen=True)
class WorkerOutcome:
    """What the worker did with one request."""

    request_id: int
    model_id: str
    # fulfilled | skipped | failed (given up) | retry (tried again at the next poll) | waiting
    # (skipped while the reward does not cover the gas, looked at again while the request is open)
    status: str
    detail: str = ""
    outputs: list[float] | None = None
    transactions: dict[str, TxResult] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The outcome as the worker prints it (one JSON line each with --json)."""
        return {
            "request_id": self.request_id,
            "model_id": self.model_id,
            "status": self.status,
            "detail": self.detail,
            "outputs": self.outputs,
            "transactions": {k: v.to_json() for k, v in self.transactions.items()},
        }


class WorkerCursor:
    """The first block that may still hold an open request for this worker, on this chain.

    It remembers the chain's genesis hash: a devnet started afresh reuses chain id and market
    address, and its requests must not be skipped because an old cursor is past them.
    """

    def __init__(self, chain_id: int, market: str, genesis: str) -> None:
        self.path = get_settings().worker_state_dir / f"{chain_id}-{market.lower()}.json"
        self.genesis = genesis
        try:
            doc = json.loads(self.path.read_text())
            self.block = int(doc["from_block"]) if doc.get("genesis") == genesis else 0
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.block = 0

    def save(self, block: int) -> None:
        self.block = block
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"from_block": block, "genesis": self.genesis}))
        tmp.replace(self.path)
