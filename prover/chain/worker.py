"""``zkinfer worker --chain``: a provider loop that serves on-chain requests for its bundles.

The chain is the source of truth: every poll reads ``InferenceRequested`` events from a cursor and
asks the market for each request's current state, so a worker killed at any point (even during a
proof) picks the same open requests up again on restart, and a request that someone else settled
meanwhile is simply skipped. The cursor only moves past blocks whose requests are all settled,
expired or given up on; it lives in ``$ZKINFER_HOME/worker/``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prover.chain.client import ChainClient, TxResult
from prover.chain.contracts import load_artifact
from prover.chain.market import (
    MARKET,
    Status,
    fulfill_request,
    prove_request,
    read_request,
)
from prover.core import bundle as b
from prover.core.paths import cache_dir
from prover.core.progress import NullProgress, Progress
from prover.errors import (
    ChainError,
    RpcUnavailable,
    TransactionReverted,
    UsageError,
    ZkinferError,
)

__all__ = ["WorkerOutcome", "serve_requests"]

_ZERO = "0x0000000000000000000000000000000000000000"
#: Reverts after which the request can never be served by this worker; any other is retried.
_FINAL_REVERTS = frozenset(
    f"InferenceMarket{name}"
    for name in (
        "RequestNotOpen",
        "DeadlinePassed",
        "InputMismatch",
        "InstanceCount",
        "ProofRejected",
        "UnknownModel",
    )
)


@dataclass(frozen=True)
class WorkerOutcome:
    """What the worker did with one request."""

    request_id: int
    model_id: str
    status: str  # fulfilled | skipped | failed (given up) | retry (tried again at the next poll)
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


class _Cursor:
    """The first block that may still hold an open request for this worker."""

    def __init__(self, chain_id: int, market: str) -> None:
        self.path = cache_dir() / "worker" / f"{chain_id}-{market.lower()}.json"
        try:
            self.block = int(json.loads(self.path.read_text())["from_block"])
        except (OSError, ValueError, KeyError, TypeError):
            self.block = 0

    def save(self, block: int) -> None:
        self.block = block
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"from_block": block}))
        tmp.replace(self.path)


def _now(client: ChainClient) -> int:
    block = client.rpc("read the latest block", lambda: client.w3.eth.get_block("latest"))
    return int(block["timestamp"])


class _Worker:
    def __init__(
        self,
        client: ChainClient,
        market: str,
        bundles: dict[str, Path],
        workdir: Path,
        lock: bool,
        progress: Progress,
    ) -> None:
        self.client = client
        self.market = market
        self.contract = client.contract(load_artifact(MARKET), market)
        self.bundles = bundles
        self.workdir = workdir
        self.lock = lock
        self.progress = progress
        self.done: set[int] = set()

    def handle(self, request_id: int, input_data: bytes) -> WorkerOutcome | None:
        """Serve one request; ``None`` means "not now, look again at the next poll".

        The proof is made before any stake is posted: a request whose data does not match its
        commitment, or that cannot be proven, costs the worker nothing.
        """
        request = read_request(self.client, self.market, request_id, input_data)
        model = request.model_id
        if request.status is not Status.OPEN:
            return WorkerOutcome(
                request_id, model, "skipped", f"already {request.status.name.lower()}"
            )
        now = _now(self.client)
        if now > request.deadline:
            return WorkerOutcome(request_id, model, "skipped", "deadline passed")
        me = self.client.address
        locked_by_other = request.locked_by not in (_ZERO, me) and request.lock_deadline >= now
        if locked_by_other:
            return None
        proof = self.workdir / f"request-{request_id}.json"
        self.progress.note(f"request {request_id}: proving for model {model[:16]}…")
        prove_request(self.bundles[model], request, proof, self.progress)
        txs: dict[str, TxResult] = {}
        if self.lock and request.locked_by != me:
            # locking only now, right before fulfilling: the fulfil transaction cannot be copied
            # from the mempool, and no stake is at risk while proving
            stake = int(
                self.client.call(
                    self.contract.functions.getModel(bytes.fromhex(model)), "read the model"
                )[0][11]
            )
            txs["lock"] = self.client.transact(
                self.contract.functions.lockRequest(request_id), "lock request", value=stake
            )
        result = fulfill_request(self.client, self.market, self.bundles[model], request_id, proof)
        txs["fulfill"] = result.tx
        return WorkerOutcome(request_id, model, "fulfilled", "", result.outputs, txs)

    def poll(self, cursor: _Cursor, report: Callable[[WorkerOutcome], None]) -> None:
        latest = int(
            self.client.rpc("read the block number", lambda: self.client.w3.eth.block_number)
        )
        if cursor.block > latest + 1:  # the chain was reset (a fresh devnet): start over
            cursor.save(0)
        logs = self.client.rpc(
            "read request events",
            lambda: self.contract.events.InferenceRequested().get_logs(
                from_block=cursor.block,
                to_block=latest,
                argument_filters={"modelId": [bytes.fromhex(m) for m in self.bundles]},
            ),
        )
        pending_from: int | None = None
        for log in logs:
            request_id = int(log["args"]["requestId"])
            if request_id in self.done:
                continue
            model = bytes(log["args"]["modelId"]).hex()
            try:
                outcome = self.handle(request_id, bytes(log["args"]["inputData"]))
            except RpcUnavailable:
                raise  # the RPC is gone: nothing more can be done this poll
            except TransactionReverted as exc:
                if exc.error_name not in _FINAL_REVERTS:  # a lock race, a pause: try again later
                    report(WorkerOutcome(request_id, model, "retry", str(exc)))
                    outcome = None
                else:
                    outcome = WorkerOutcome(request_id, model, "failed", str(exc))
            except ChainError as exc:  # refused by the RPC (funds, fees): try again later
                report(WorkerOutcome(request_id, model, "retry", str(exc)))
                outcome = None
            except ZkinferError as exc:  # bad input data, unprovable: report, do not retry
                outcome = WorkerOutcome(request_id, model, "failed", str(exc))
            if outcome is None:
                pending_from = pending_from if pending_from is not None else int(log["blockNumber"])
                continue
            self.done.add(request_id)
            report(outcome)
        cursor.save(pending_from if pending_from is not None else latest + 1)


def serve_requests(
    client: ChainClient,
    market: str,
    bundle_dirs: list[Path],
    *,
    workdir: Path,
    lock: bool = False,
    once: bool = False,
    poll_s: float = 2.0,
    progress: Progress | None = None,
    report: Callable[[WorkerOutcome], None] = lambda _: None,
    stop: threading.Event | None = None,
    from_block: int | None = None,
) -> list[WorkerOutcome]:
    """Serve the market's requests for the models of ``bundle_dirs`` until ``stop`` (or one poll).

    Each outcome is passed to ``report`` as it happens and returned at the end. ``from_block``
    moves the saved cursor (hosted RPCs limit how many blocks one log query may span).
    """
    client.address  # fail now, not at the first request, when no key is configured  # noqa: B018
    bundles: dict[str, Path] = {}
    for d in bundle_dirs:
        bundles[b.load_bundle(Path(d), check=b.PROVE_FILES).model_id] = Path(d)
    if not bundles:
        raise UsageError("the worker needs at least one --bundle to serve")
    workdir.mkdir(parents=True, exist_ok=True)
    worker = _Worker(client, market, bundles, workdir, lock, progress or NullProgress())
    cursor = _Cursor(client.chain_id, market)
    if from_block is not None:
        cursor.save(from_block)
    if not lock and not client.is_local_devnet:
        worker.progress.note(
            "serving without --lock: on a public mempool a fulfil transaction can be copied "
            "and front-run for the reward"
        )
    outcomes: list[WorkerOutcome] = []

    def keep(outcome: WorkerOutcome) -> None:
        outcomes.append(outcome)
        report(outcome)

    stop = stop or threading.Event()
    while True:
        try:
            worker.poll(cursor, keep)
        except ChainError as exc:
            if once:
                raise
            worker.progress.note(f"{exc}; retrying in {poll_s:.0f} s")
        if once or stop.wait(poll_s):
            return outcomes
