"""Claim-time batching in the store, without proofs: a model with N slots is leased N requests
of one client at a time (or fewer, padded, once the oldest has waited), and a batch lease lives,
fails and expires as one. In a database of this module's own (``private_pg_url``): its models
have no bundle (claims need none), and the API tests that list every model of the session's
database must not meet them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from prover.service.leases import LeaseLost
from prover.service.store import Claimed, Store
from prover.service.views import lease_body
from tests.helpers.service import count_rows

pytestmark = pytest.mark.postgres


TTL = timedelta(seconds=60)
WAIT = timedelta(seconds=2)
SLOTS = 4
T = TypeVar("T")


def _run(
    private_pg_url: str, scenario: Callable[[Store, str], Awaitable[T]], slots: int = SLOTS
) -> T:
    """``scenario(store, model_id)`` against a fresh model of ``slots`` slots."""

    async def main() -> T:
        store = Store(private_pg_url, max_size=8)
        await store.pool.open()
        try:
            model_id = f"batch-{uuid.uuid4().hex[:8]}"
            await store.put_model(
                model_id, status="ready", bundle_digest="d" * 64, manifest={}, slots=slots
            )
            return await scenario(store, model_id)
        finally:
            await store.pool.close()

    return asyncio.run(main())


async def _queue(store: Store, model_id: str, n: int, owner: str = "client-a") -> list[str]:
    ids = []
    for k in range(n):
        row, _ = await store.create_inference(
            owner=owner,
            model_id=model_id,
            bundle_digest="d" * 64,
            values=[[float(k), 0.1, -0.3]],
            deadline=datetime.now(UTC) + timedelta(hours=1),
            webhook_url=None,
            idempotency_key=None,
            request_hash="h",
        )
        ids.append(row["id"])
    return ids


async def _claim(
    store: Store, model_id: str, *, at: datetime | None = None, provider: str = "prover"
) -> Claimed | None:
    return await store.claim(
        provider,
        worker="w",
        models=[model_id],
        ttl=TTL,
        now=at or datetime.now(UTC),
        max_attempts=3,
        batch_wait=WAIT,
    )


def _ids(claimed: Claimed | None) -> list[str]:
    assert claimed is not None
    return [r["id"] for r in claimed.rows]


def test_n_queued_requests_are_leased_as_one_batch_in_slot_order(private_pg_url: str) -> None:
    async def scenario(store: Store, model_id: str) -> None:
        ids = await _queue(store, model_id, SLOTS + 1)
        claimed = await _claim(store, model_id)
        assert _ids(claimed) == ids[:SLOTS]  # full at once, oldest first, no waiting
        assert claimed is not None and claimed.padding == ()
        lease = lease_body(claimed, 60.0)
        assert lease.batch is not None and lease.batch.size == SLOTS
        assert [(s.slot, s.inference.id) for s in lease.batch.slots] == list(enumerate(ids[:SLOTS]))
        assert lease.inference.id == ids[0]
        assert lease.batch.slots[1].inference.input.input_data == [[1.0, 0.1, -0.3]]
        # the fifth waits for its batch to fill or ripen
        assert await _claim(store, model_id) is None

    _run(private_pg_url, scenario)


def test_a_partial_batch_waits_for_batch_wait_then_is_leased_with_padding(
    private_pg_url: str,
) -> None:
    async def scenario(store: Store, model_id: str) -> None:
        ids = await _queue(store, model_id, 2)
        now = datetime.now(UTC)
        assert await _claim(store, model_id, at=now) is None
        assert await _claim(store, model_id, at=now + WAIT / 2) is None
        claimed = await _claim(store, model_id, at=now + WAIT + timedelta(seconds=1))
        assert _ids(claimed) == ids
        assert claimed is not None and claimed.padding == (2, 3)
        lease = lease_body(claimed, 60.0)
        assert lease.batch is not None and lease.batch.padding == [2, 3]
        recorded = count_rows(
            private_pg_url,
            "SELECT count(*) FROM attempts WHERE lease_id = %s AND batch_size = 4"
            " AND padding = '{2,3}'",
            claimed.lease_id,
        )
        assert recorded == 2

    _run(private_pg_url, scenario)


def test_two_clients_never_share_a_batch(private_pg_url: str) -> None:
    async def scenario(store: Store, model_id: str) -> None:
        a = await _queue(store, model_id, 2, owner="client-a")
        b = await _queue(store, model_id, 3, owner="client-b")
        later = datetime.now(UTC) + WAIT + timedelta(seconds=1)
        first = await _claim(store, model_id, at=later)
        second = await _claim(store, model_id, at=later)
        assert _ids(first) == a  # the oldest queue, padded, though b's would fill the batch
        assert _ids(second) == b
        assert await _claim(store, model_id, at=later) is None

    _run(private_pg_url, scenario)


def test_a_batch_one_model_leases_one_request_at_once_without_waiting(private_pg_url: str) -> None:
    async def scenario(store: Store, model_id: str) -> None:
        ids = await _queue(store, model_id, 3)
        claimed = await _claim(store, model_id)
        assert _ids(claimed) == ids[:1]
        assert claimed is not None and lease_body(claimed, 60.0).batch is None

    _run(private_pg_url, scenario, slots=1)


def test_concurrent_claims_split_a_queue_into_disjoint_batches(private_pg_url: str) -> None:
    async def scenario(store: Store, model_id: str) -> list[list[str]]:
        ids = await _queue(store, model_id, 2 * SLOTS)
        got = await asyncio.gather(*(_claim(store, model_id, provider=f"p{i}") for i in range(6)))
        leased = [_ids(c) for c in got if c is not None]
        assert sorted(i for batch in leased for i in batch) == sorted(ids)
        return leased

    leased = _run(private_pg_url, scenario)
    assert sorted(len(batch) for batch in leased) == [SLOTS, SLOTS]


def test_a_failed_batch_goes_back_to_the_queue_whole_counted_once(private_pg_url: str) -> None:
    async def scenario(store: Store, model_id: str) -> None:
        ids = await _queue(store, model_id, SLOTS)
        await store.provider("prover")  # first contact, as the API records it
        claimed = await _claim(store, model_id)
        assert claimed is not None
        rows = await store.fail(
            "prover",
            claimed.lease_id,
            claimed.token,
            reason="provider failure: internal",
            retryable=True,
            now=datetime.now(UTC),
            max_attempts=3,
        )
        assert sorted(r["id"] for r in rows) == sorted(ids)
        assert {r["status"] for r in rows} == {"queued"}
        assert (await store.provider("prover"))["failures"] == 1
        again = await _claim(store, model_id, provider="other")
        assert _ids(again) == ids

    _run(private_pg_url, scenario)


def test_an_expired_batch_lease_is_reaped_whole_and_its_holder_has_lost_it(
    private_pg_url: str,
) -> None:
    async def scenario(store: Store, model_id: str) -> None:
        ids = await _queue(store, model_id, 3)
        start = datetime.now(UTC) + WAIT + timedelta(seconds=1)
        claimed = await _claim(store, model_id, at=start)
        assert claimed is not None
        later = start + TTL + timedelta(seconds=1)
        # (the reaper also hands back other tests' leases that expire by then)
        reaped = [r for r in await store.reap(now=later, max_attempts=3) if r["id"] in ids]
        assert sorted(r["id"] for r in reaped) == sorted(ids)
        assert {r["status"] for r in reaped} == {"queued"}
        with pytest.raises(LeaseLost):
            await store.renew("prover", claimed.lease_id, claimed.token, ttl=TTL, now=later)
        expired = count_rows(
            private_pg_url,
            "SELECT count(*) FROM attempts WHERE lease_id = %s AND outcome = 'expired'",
            claimed.lease_id,
        )
        assert expired == 3

    _run(private_pg_url, scenario)


def test_a_request_canceled_out_of_a_batch_leaves_the_rest_proving(private_pg_url: str) -> None:
    async def scenario(store: Store, model_id: str) -> None:
        ids = await _queue(store, model_id, SLOTS)
        claimed = await _claim(store, model_id)
        assert claimed is not None
        await store.cancel(ids[1], "client-a")
        now = datetime.now(UTC)
        await store.renew("prover", claimed.lease_id, claimed.token, ttl=TTL, now=now)
        rows = await store.submit(
            "prover", claimed.lease_id, claimed.token, proof={}, prove_s=1.0, now=now
        )
        assert [r["id"] for r in rows] == [ids[0], ids[2], ids[3]]
        assert {r["status"] for r in rows} == {"verifying"}
        assert (await store.get_inference(ids[1]))["status"] == "canceled"
        sub = await store.submission(claimed.lease_id)
        assert [r.slot for r in sub.requests] == [0, 2, 3]

    _run(private_pg_url, scenario)
