"""Batch proofs through the store and the service's own verification, with real ezkl proofs of
the ``tiny_batch`` bundle (4 slots): one proof answers every request of a batch, each with its own
outputs; a bad one sends the whole batch back once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from prover.core.batch import prove_batch
from prover.core.prove import prove_values
from prover.service.models import register_bundle
from prover.service.store import Claimed, Store
from prover.service.tasks import run_verification
from prover.service.views import inference_view
from prover.settings import Settings
from tests.conftest import Compiled
from tests.helpers import resync_hex_proof
from tests.helpers.tiny import tiny_input

pytestmark = pytest.mark.postgres

T = TypeVar("T")
WAIT = timedelta(seconds=2)


def _run(pg_url: str, bundle: Path, scenario: Callable[[Store, str], Awaitable[T]]) -> T:
    async def main() -> T:
        store = Store(pg_url, max_size=4)
        await store.pool.open()
        try:
            model_id = f"tiny-batch-{uuid.uuid4().hex[:8]}"
            await register_bundle(store, model_id, bundle)
            return await scenario(store, model_id)
        finally:
            await store.pool.close()

    return asyncio.run(main())


def _provider(model_id: str) -> str:
    """A provider of its own per test: the database (and its counters) is the session's."""
    return f"prover-{model_id}"


async def _lease(store: Store, model_id: str, inputs: Sequence[int]) -> Claimed:
    """Queue one request per input number and lease them as one (padded) batch."""
    for i in inputs:
        await store.create_inference(
            owner="client-a",
            model_id=model_id,
            bundle_digest="d" * 64,
            values=tiny_input(i)["input_data"],
            deadline=datetime.now(UTC) + timedelta(hours=1),
            webhook_url=None,
            idempotency_key=None,
            request_hash="h",
        )
    await store.provider(_provider(model_id))
    claimed = await store.claim(
        _provider(model_id),
        worker="",
        models=[model_id],
        ttl=timedelta(seconds=60),
        now=datetime.now(UTC) + WAIT + timedelta(seconds=1),
        max_attempts=3,
        batch_wait=WAIT,
    )
    assert claimed is not None and len(claimed.rows) == len(inputs)
    return claimed


async def _submit(store: Store, claimed: Claimed, proof: dict[str, Any]) -> list[dict[str, Any]]:
    await store.submit(
        _provider(claimed.row["model_id"]),
        claimed.lease_id,
        claimed.token,
        proof=proof,
        prove_s=1.0,
        now=datetime.now(UTC),
    )
    return await run_verification(store, Settings(dev=True), claimed.lease_id)


def _batch_proof(compiled: Compiled, slots: list[int | None]) -> dict[str, Any]:
    made = prove_batch(compiled.bundle.root, [None if i is None else tiny_input(i) for i in slots])
    return made.document


def test_an_accepted_batch_gives_each_request_its_own_outputs_and_slot(
    pg_url: str, tiny_batch: Compiled, tiny: Compiled
) -> None:
    proof = _batch_proof(tiny_batch, [3, 4, 5, None])

    async def scenario(store: Store, model_id: str) -> None:
        claimed = await _lease(store, model_id, [3, 4, 5])
        rows = await _submit(store, claimed, proof)
        assert [r["id"] for r in rows] == [r["id"] for r in claimed.rows]
        assert {r["status"] for r in rows} == {"done"}
        for slot, (row, i) in enumerate(zip(rows, [3, 4, 5], strict=True)):
            view = inference_view(row)
            assert (view.slot, view.batch_size, view.padding) == (slot, 4, [3])
            single = prove_values(tiny.bundle.root, tiny_input(i))
            assert view.outputs == single.outputs, f"slot {slot}"
            assert view.proof is not None and view.calldata is not None
        assert rows[0]["proof"] == rows[2]["proof"]  # one shared proof
        assert (await store.provider(_provider(model_id)))["accepted"] == 3

    _run(pg_url, tiny_batch.bundle.root, scenario)


def test_a_rejected_batch_proof_requeues_every_request_once(
    pg_url: str, tiny_batch: Compiled
) -> None:
    proof = _batch_proof(tiny_batch, [0, 1, None, None])
    proof["proof"][40] ^= 1
    resync_hex_proof(proof)

    async def scenario(store: Store, model_id: str) -> None:
        claimed = await _lease(store, model_id, [0, 1])
        rows = await _submit(store, claimed, proof)
        assert {r["status"] for r in rows} == {"queued"}
        assert len(rows) == 2 and all(r["attempts"] == 1 for r in rows)
        assert (await store.provider(_provider(model_id)))["rejected"] == 1  # once for the batch
        assert (await store.verdict(claimed.lease_id))[0] == "rejected"

    _run(pg_url, tiny_batch.bundle.root, scenario)


def test_a_batch_proof_with_other_data_in_a_padding_slot_is_rejected(
    pg_url: str, tiny_batch: Compiled
) -> None:
    # a provider may not hide a proof of some other input in a slot the lease marked padding
    proof = _batch_proof(tiny_batch, [0, 1, 9, None])

    async def scenario(store: Store, model_id: str) -> None:
        claimed = await _lease(store, model_id, [0, 1])
        rows = await _submit(store, claimed, proof)
        assert {r["status"] for r in rows} == {"queued"}
        assert "not about the input given" in rows[0]["reason"]

    _run(pg_url, tiny_batch.bundle.root, scenario)


def test_a_request_canceled_during_its_batch_proof_leaves_the_others_accepted(
    pg_url: str, tiny_batch: Compiled
) -> None:
    # the proof holds the canceled request's input (the lease gave it): not a padding slot
    proof = _batch_proof(tiny_batch, [6, 7, None, None])

    async def scenario(store: Store, model_id: str) -> None:
        claimed = await _lease(store, model_id, [6, 7])
        await store.cancel(claimed.rows[0]["id"], "client-a")
        rows = await _submit(store, claimed, proof)
        assert [(r["id"], r["status"], r["slot"]) for r in rows] == [
            (claimed.rows[1]["id"], "done", 1)
        ]
        assert (await store.provider(_provider(model_id)))["rejected"] == 0

    _run(pg_url, tiny_batch.bundle.root, scenario)
