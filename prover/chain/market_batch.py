"""``fulfillBatch`` from Python: settle several requests of one registration with one proof.

Each request is settled at its slot of a batch proof of a bundle with market slots
(:mod:`prover.chain.slots`); the market checks each request's commitment against its slot's
input instances and calls the verifier once. Everything the market would refuse is refused here
first, naming the request, so that no transaction is sent that must revert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.chain.abi_types import MarketContract
from prover.chain.client import ChainClient, TxResult, events_of
from prover.chain.market import (
    FulfillResult,
    input_commitment,
    proof_call_args,
    settleable_request,
)
from prover.chain.slots import market_slots, request_input_instances
from prover.core import bundle as b
from prover.core.fields import signed_to_float
from prover.errors import UsageError

__all__ = ["BatchFulfillResult", "fulfill_batch"]


@dataclass(frozen=True)
class BatchFulfillResult:
    """Requests settled by one ``fulfillBatch``: each one's outputs, and the shared transaction."""

    results: list[FulfillResult]
    slots: list[int]
    tx: TxResult

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object: each request with its slot, and the transaction."""
        requests = []
        for result, slot in zip(self.results, self.slots, strict=True):
            doc = result.to_json()
            del doc["transaction"]  # shared: once, below
            requests.append({**doc, "slot": slot})
        return {"requests": requests, "transaction": self.tx.to_json()}


def _check_slots(request_ids: Sequence[int], slots: Sequence[int], count: int) -> None:
    if not request_ids:
        raise UsageError("no request to settle")
    if len(slots) != len(request_ids):
        raise UsageError(
            f"{len(slots)} slots for {len(request_ids)} requests: give one slot per request"
        )
    if len(set(request_ids)) != len(request_ids):
        raise UsageError("a request is listed twice: each settles once")
    if len(set(slots)) != len(slots) or not all(0 <= s < count for s in slots):
        raise UsageError(
            f"{list(slots)}: slots must be distinct, from 0 to {count - 1}",
        )


def fulfill_batch(
    client: ChainClient,
    market: str,
    bundle_dir: Path,
    request_ids: Sequence[int],
    slots: Sequence[int],
    proof_path: Path,
) -> BatchFulfillResult:
    """Settle ``request_ids[i]`` at slot ``slots[i]`` of the proof in ``proof_path`` with one
    ``fulfillBatch``; unlisted slots are padding.

    Raises :class:`~prover.errors.UsageError` before sending anything when the bundle has no
    market slots, a slot or request is listed twice or out of range, a request is not open, is
    for another model or another registration than the first, or its commitment is not its
    slot's input; the market checks all of it again.
    """
    bundle = b.load_bundle(Path(bundle_dir), check=b.CHAIN_FILES)
    layout = market_slots(bundle.manifest)
    if layout is None:
        raise UsageError(
            "this bundle has no slots the market settles separately: settle its request with "
            "`fulfill`",
            field="bundle_dirs",
        )
    _check_slots(request_ids, slots, layout.count)
    proof, instances = proof_call_args(bundle, proof_path)
    registrations = set()
    for request_id, slot in zip(request_ids, slots, strict=True):
        request = settleable_request(client, market, bundle, request_id)
        registrations.add(request.registration_id)
        slot_inputs = request_input_instances(bundle.manifest, instances, slot)
        if input_commitment(slot_inputs) != request.commitment:
            raise UsageError(
                f"{proof_path} proves another input at slot {slot} than request {request_id} "
                "committed to"
            )
    if len(registrations) != 1:
        raise UsageError(
            "the requests belong to different registrations of the model: one batch settles "
            "requests of one registration"
        )
    reader = MarketContract(client, market)
    contract = reader.contract
    fn = contract.functions.fulfillBatch(list(request_ids), list(slots), proof, instances)
    tx = client.transact(fn, "fulfill batch")
    outputs = {
        int(e["args"]["requestId"]): [int(v) for v in e["args"]["outputs"]]
        for e in events_of(contract, "InferenceFulfilled", tx)
    }
    callbacks_failed = events_of(contract, "ConsumerCallbackFailed", tx)
    failed = {int(e["args"]["requestId"]) for e in callbacks_failed}
    scale = reader.get_model(bytes.fromhex(registrations.pop()), "read model").config.output_scale
    results = [
        FulfillResult(
            rid,
            [signed_to_float(v, scale) for v in outputs.get(rid, [])],
            outputs.get(rid, []),
            scale,
            tx,
            rid in failed,
        )
        for rid in request_ids
    ]
    return BatchFulfillResult(results, list(slots), tx)
