"""The chain worker's batches: open requests of one slotted registration, one proof, one
``fulfillBatch``.

A registration with S > 1 slots (a batch bundle, :mod:`prover.chain.slots`) is served up to S
requests at a time. Each request is looked at on its own first (open, not expired, not locked by
someone else, worth its gas, its ``inputData`` matching its commitment and in range); only those
are proven, each at its own slot, the rest of the batch padding. Proving takes seconds, so each
request is read again right before settling: one settled or locked by someone else meanwhile is
left out of the batch (its slot becomes padding), never the reason the whole batch reverts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from prover.chain.client import ChainClient, TxResult
from prover.chain.market import (
    OnChainRequest,
    proof_commitment,
    read_request,
    request_values,
)
from prover.chain.market_batch import fulfill_batch
from prover.chain.slots import prove_slots
from prover.chain.worker_state import Reporter, WorkerOutcome
from prover.core import bundle as b
from prover.core.progress import Progress
from prover.core.slots import check_slot_inputs
from prover.errors import InputError, TransactionReverted, UsageError

__all__ = ["BatchHost", "handle_batch"]


class BatchHost(Protocol):
    """What a batch needs of the worker serving it."""

    client: ChainClient
    market: str
    bundles: dict[str, Path]
    workdir: Path
    lock: bool
    progress: Progress
    fulfil_gas: dict[str, int]

    def triage(
        self, request: OnChainRequest, *, check_profit: bool = True
    ) -> tuple[bool, WorkerOutcome | None]:
        """Whether to serve the request now; else its outcome (``None``: look again later)."""
        ...

    def lock_request(self, request: OnChainRequest) -> TxResult | str:
        """Lock the request, or say why it would put the stake at risk."""
        ...

    def retry(self, request_id: int, model: str, why: str, report: Reporter) -> None:
        """Report once per reason that the request is tried again at the next poll."""
        ...


def _proof(
    host: BatchHost,
    bundle: b.Bundle,
    chosen: list[OnChainRequest],
    values: list[list[list[float]]],
) -> Path:
    """The batch's proof, request ``chosen[i]`` at slot i: made once and kept for retries,
    reused only while every slot still proves its request's committed input."""
    ids = "-".join(str(r.request_id) for r in chosen)
    proof = host.workdir / f"{host.client.chain_id}-{host.market.lower()}-batch-{ids}.json"
    if proof.is_file():
        with contextlib.suppress(UsageError):  # unreadable or other inputs: prove again
            if all(
                proof_commitment(bundle, proof, slot) == r.commitment
                for slot, r in enumerate(chosen)
            ):
                return proof
    host.progress.note(
        f"requests {ids.replace('-', ', ')}: proving one batch for model {bundle.model_id[:16]}…"
    )
    return prove_slots(bundle, values, proof, host.progress)


def handle_batch(
    host: BatchHost, model: str, items: Sequence[tuple[int, bytes]], report: Reporter
) -> dict[int, WorkerOutcome | None]:
    """Serve ``items`` (request id and ``inputData``, at most the registration's slot count, all
    of one registration) with one proof and one ``fulfillBatch``; each request's outcome, ``None``
    for "look again at the next poll".

    A request that cannot be served is decided on its own (skipped, failed, waiting, later) and
    the others are still settled; a reverted batch is retried as a whole at the next poll, where
    each request is looked at again.
    """
    results: dict[int, WorkerOutcome | None] = {}
    bundle_dir = host.bundles[model]
    bundle = b.load_bundle(bundle_dir, check=b.CHAIN_FILES)
    chosen: list[OnChainRequest] = []
    values: list[list[list[float]]] = []
    for request_id, data in items:
        request = read_request(host.client, host.market, request_id, data)
        serve, outcome = host.triage(request)
        if not serve:
            results[request_id] = outcome
            continue
        try:  # bad data fails this request alone, before anything is proven
            slot_values = request_values(bundle, request)
            check_slot_inputs(bundle, slot_values, where=f"request {request_id}'s input")
        except (InputError, UsageError) as exc:
            results[request_id] = WorkerOutcome(request_id, model, "failed", str(exc))
            continue
        chosen.append(request)
        values.append(slot_values)
    if not chosen:
        return results
    proof = _proof(host, bundle, chosen, values)

    locks: dict[int, TxResult] = {}
    settle: list[tuple[int, int]] = []  # (request id, slot)
    for slot, request in enumerate(chosen):
        rid = request.request_id
        fresh = read_request(host.client, host.market, rid, input_data=b"")
        serve, outcome = host.triage(fresh, check_profit=False)
        if not serve:  # settled, expired or locked by someone else while we proved
            results[rid] = outcome
            continue
        if host.lock and fresh.locked_by != host.client.address:
            try:
                locked = host.lock_request(fresh)
            except TransactionReverted as exc:  # a lock race: look again at the next poll
                host.retry(rid, model, str(exc), report)
                results[rid] = None
                continue
            if isinstance(locked, str):
                results[rid] = WorkerOutcome(rid, model, "skipped", locked)
                continue
            locks[rid] = locked
        settle.append((rid, slot))
    if not settle:
        return results

    ids, slots = [rid for rid, _ in settle], [slot for _, slot in settle]
    try:
        done = fulfill_batch(host.client, host.market, bundle_dir, ids, slots, proof)
    except (TransactionReverted, UsageError) as exc:
        # whatever changed since the checks (a request settled, expired or locked meanwhile,
        # refused by fulfill_batch's own checks or by the market): every request is looked at
        # again at the next poll, on its own, and the proof made afresh; none is failed for good
        # and a lock just taken is still used
        proof.unlink(missing_ok=True)
        for rid in ids:
            host.retry(rid, model, f"batch of {len(ids)}: {exc}", report)
            results[rid] = None
        return results
    if all(int(r.consumer, 16) == 0 for r in chosen if r.request_id in ids):
        host.fulfil_gas[model] = done.tx.gas_used // len(ids)  # per request: the next estimate
    for result, slot in zip(done.results, done.slots, strict=True):
        rid = result.request_id
        txs = {"fulfill": done.tx} | ({"lock": locks[rid]} if rid in locks else {})
        detail = f"slot {slot} of one proof settling {len(ids)} request(s)"
        results[rid] = WorkerOutcome(rid, model, "fulfilled", detail, result.outputs, txs)
    return results
