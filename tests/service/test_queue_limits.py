"""What one client can queue and what one claim reads of the queue: the per-client limit
(``ZKINFER_MAX_QUEUED_PER_CLIENT``) on open requests under concurrent creates from two API
processes and under requests a lease gives back, the 429 a client at its limit (or flooding the
service with concurrent creates) gets, and the claim's query plan on a queue of 20,000 requests.
In a database of this module's own (``private_pg_url``): its models have no bundle, and the API
tests that list every model of the session's database must not meet them."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from prover.service.app import create_app
from prover.service.claims import WINDOW, ready_groups
from prover.service.db import migrate
from prover.service.inferences import MAX_WAITING_CREATES, QUEUE_LOCK
from prover.service.problems import CREATES_BUSY_RETRY_AFTER_S, QUEUE_FULL_RETRY_AFTER_S
from prover.service.store import CreatesBusy, QueueFull, Row, Store
from prover.settings import Settings, key_id
from tests.conftest import Compiled
from tests.helpers.service import CLIENT_A, CLIENT_B, PROVIDER, auth, count_rows
from tests.service.conftest import register, sample

pytestmark = pytest.mark.postgres

LIMIT = 5


async def _create(
    store: Store,
    owner: str,
    model_id: str,
    *,
    key: str | None = None,
    limit: int | None = LIMIT,
    max_attempts: int | None = 3,
) -> Row:
    row, _ = await store.create_inference(
        owner=owner,
        model_id=model_id,
        bundle_digest="d" * 64,
        values=[[0.5]],
        deadline=datetime.now(UTC) + timedelta(hours=1),
        webhook_url=None,
        idempotency_key=key,
        request_hash="h",
        max_queued=limit,
        max_attempts=max_attempts,
    )
    return row


async def _claim(store: Store, model_id: str) -> Any:
    claimed = await store.claim(
        "prover",
        worker="w",
        models=[model_id],
        ttl=timedelta(seconds=60),
        now=datetime.now(UTC),
        max_attempts=3,
    )
    assert claimed is not None
    return claimed


async def _opened(url: str, n: int = 1, max_size: int = 4) -> list[Store]:
    stores = [Store(url, max_size=max_size) for _ in range(n)]
    for store in stores:
        await store.pool.open()
    return stores


async def _new_model(store: Store, slots: int = 1) -> str:
    model_id = f"limits-{uuid.uuid4().hex[:8]}"
    await store.put_model(
        model_id, status="ready", bundle_digest="d" * 64, manifest={}, slots=slots
    )
    return model_id


def _queued(url: str, owner: str, model_id: str) -> int:
    return count_rows(
        url,
        "SELECT count(*) FROM inferences WHERE owner = %s AND model_id = %s AND status = 'queued'",
        owner,
        model_id,
    )


def test_concurrent_creates_from_two_api_processes_never_pass_a_clients_limit(
    private_pg_url: str,
) -> None:
    """Two pools (two API processes over one database) race 24 creates of one client: the
    count and the insert of one create are never split by another."""

    async def scenario() -> tuple[str, list[Row | BaseException]]:
        stores = await _opened(private_pg_url, n=2, max_size=8)
        try:
            model_id = await _new_model(stores[0])
            tries = (_create(stores[k % 2], "racer", model_id) for k in range(24))
            return model_id, await asyncio.gather(*tries, return_exceptions=True)
        finally:
            for store in stores:
                await store.pool.close()

    model_id, results = asyncio.run(scenario())
    refused = [r for r in results if isinstance(r, QueueFull)]
    created = [r for r in results if isinstance(r, dict)]
    assert len(created) == LIMIT and len(refused) == 24 - LIMIT, results
    assert {r.limit for r in refused} == {LIMIT}
    assert _queued(private_pg_url, "racer", model_id) == LIMIT


def test_the_limit_is_per_client_and_finished_or_canceled_requests_make_room(
    private_pg_url: str,
) -> None:
    async def scenario() -> None:
        (store,) = await _opened(private_pg_url)
        try:
            model_id = await _new_model(store)
            first = await _create(store, "a", model_id, key="k-first")
            for _ in range(LIMIT - 1):
                await _create(store, "a", model_id)
            with pytest.raises(QueueFull):
                await _create(store, "a", model_id)
            # a retry of a request already made is answered, not refused
            again = await _create(store, "a", model_id, key="k-first")
            assert again["id"] == first["id"]
            await _create(store, "b", model_id)  # another client is not held back
            claimed = await _claim(store, model_id)
            assert claimed.row["id"] == first["id"]  # oldest first
            with pytest.raises(QueueFull):  # leased: still open, still counted
                await _create(store, "a", model_id)
            await store.cancel(first["id"], "a")  # canceled: no longer open
            last = await _create(store, "a", model_id)
            with pytest.raises(QueueFull):
                await _create(store, "a", model_id)
            await store.cancel(last["id"], "a")
            await _create(store, "a", model_id)
            for _ in range(3):  # no limit: never refused
                await _create(store, "a", model_id, limit=None)
        finally:
            await store.pool.close()

    asyncio.run(scenario())


def _open(url: str, owner: str, model_id: str) -> int:
    return count_rows(
        url,
        "SELECT count(*) FROM inferences WHERE owner = %s AND model_id = %s"
        " AND status IN ('queued', 'proving', 'verifying')",
        owner,
        model_id,
    )


def test_requests_a_lease_gives_back_never_take_a_client_past_its_limit(
    private_pg_url: str,
) -> None:
    """A prover that leases a client's requests and fails them (retryably) puts them back in the
    queue: they were counted while leased, so the client cannot queue more in the meantime."""

    async def scenario() -> str:
        (store,) = await _opened(private_pg_url)
        try:
            model_id = await _new_model(store)
            for _ in range(LIMIT):
                await _create(store, "colluder", model_id)
            leases = [await _claim(store, model_id) for _ in range(2)]
            with pytest.raises(QueueFull):  # two leased: the client still may not queue more
                await _create(store, "colluder", model_id)
            for claimed in leases:
                await store.fail(
                    "prover",
                    claimed.lease_id,
                    claimed.token,
                    reason="gave up",
                    retryable=True,
                    now=datetime.now(UTC),
                    max_attempts=3,
                )
            with pytest.raises(QueueFull):
                await _create(store, "colluder", model_id)
            return model_id
        finally:
            await store.pool.close()

    model_id = asyncio.run(scenario())
    assert _queued(private_pg_url, "colluder", model_id) == LIMIT
    assert _open(private_pg_url, "colluder", model_id) == LIMIT


def test_requests_past_their_deadline_or_out_of_attempts_do_not_count(
    private_pg_url: str,
) -> None:
    """Not yet reaped, a request past its deadline is dead all the same; a queued request that has
    used all its attempts can never be leased: neither holds its client at the limit."""

    async def scenario() -> str:
        (store,) = await _opened(private_pg_url)
        try:
            model_id = await _new_model(store)
            rows = [await _create(store, "late", model_id) for _ in range(LIMIT)]
            with pytest.raises(QueueFull):
                await _create(store, "late", model_id)
            async with store.pool.connection() as conn:
                await conn.execute(
                    "UPDATE inferences SET deadline = now() - interval '1 minute' WHERE id = %s",
                    (rows[0]["id"],),
                )
            await _create(store, "late", model_id)
            with pytest.raises(QueueFull):
                await _create(store, "late", model_id)
            async with store.pool.connection() as conn:
                await conn.execute(
                    "UPDATE inferences SET attempts = 3 WHERE id = %s", (rows[1]["id"],)
                )
            with pytest.raises(QueueFull):  # it could still be leased with 4 attempts
                await _create(store, "late", model_id, max_attempts=4)
            await _create(store, "late", model_id, max_attempts=3)
            with pytest.raises(QueueFull):
                await _create(store, "late", model_id)
            return model_id
        finally:
            await store.pool.close()

    model_id = asyncio.run(scenario())
    # two requests still queued and not reaped, yet the client has LIMIT live ones
    assert _queued(private_pg_url, "late", model_id) == LIMIT + 2


async def _hold_turn(url: str, owner: str) -> psycopg.AsyncConnection[Any]:
    """A connection holding ``owner``'s create turn (a create stuck in another API process),
    until it commits."""
    conn = await psycopg.AsyncConnection.connect(url)
    await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (QUEUE_LOCK, owner))
    return conn


def test_a_flood_of_one_keys_creates_does_not_hold_the_pool_from_other_clients(
    private_pg_url: str,
) -> None:
    """Creates of one key stuck behind their turn (held elsewhere) wait without a connection, so
    another client's create goes through a pool of two connections meanwhile; past
    MAX_WAITING_CREATES waiting, more are answered at once."""
    flood = MAX_WAITING_CREATES + 5

    async def scenario() -> tuple[Row, list[Row | BaseException]]:
        (store,) = await _opened(private_pg_url, max_size=2)
        holder = await _hold_turn(private_pg_url, "flood")
        try:
            model_id = await _new_model(store)
            tries = [
                asyncio.ensure_future(_create(store, "flood", model_id, limit=100))
                for _ in range(flood)
            ]
            await asyncio.sleep(0)  # every flood create has started
            other = await _create(store, "other", model_id)  # while the turn is still held
            await holder.commit()
            return other, await asyncio.gather(*tries, return_exceptions=True)
        finally:
            await holder.close()
            await store.pool.close()

    other, results = asyncio.run(scenario())
    assert other["owner"] == "other"
    assert all(isinstance(r, dict | CreatesBusy) for r in results), results
    busy = [r for r in results if isinstance(r, CreatesBusy)]
    assert len(busy) >= flood - 1 - MAX_WAITING_CREATES, results  # refused without waiting
    assert "too many concurrent creates for this client key" in str(busy[0])


def test_a_create_whose_turn_is_held_elsewhere_is_refused_not_left_waiting(
    private_pg_url: str,
) -> None:
    async def scenario() -> None:
        (store,) = await _opened(private_pg_url)
        holder = await _hold_turn(private_pg_url, "stuck")
        try:
            model_id = await _new_model(store)
            with pytest.raises(CreatesBusy, match="held its turn for over 2 s"):
                await _create(store, "stuck", model_id)
            await holder.commit()
            await _create(store, "stuck", model_id)  # the turn is free again
        finally:
            await holder.close()
            await store.pool.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def limited(private_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app over this module's database, each client limited to two queued requests."""
    settings = Settings(
        home=tmp_path_factory.mktemp("limits-home"),
        dev_srs=True,
        api_keys=[CLIENT_A, CLIENT_B],  # type: ignore[list-item]
        provider_keys=[PROVIDER],  # type: ignore[list-item]
        dev=True,
        max_queued_per_client=2,
    )
    with TestClient(create_app(settings, Store(private_pg_url))) as client:
        yield client


def test_a_client_at_its_limit_gets_429_naming_the_limit_and_the_fix(
    limited: TestClient, mlp: Compiled
) -> None:
    model_id = register(limited, mlp)
    body = {"model_id": model_id, "input": sample(mlp)}

    def post(key: str, **headers: str) -> Any:
        return limited.post("/v1/inferences", json=body, headers={**auth(key), **headers})

    assert post(CLIENT_A, **{"Idempotency-Key": "one"}).status_code == 202
    assert post(CLIENT_A).status_code == 202
    full = post(CLIENT_A)
    assert full.status_code == 429, full.text
    assert full.headers["content-type"] == "application/problem+json"
    assert full.headers["retry-after"] == str(QUEUE_FULL_RETRY_AFTER_S)
    problem = full.json()
    assert problem["title"] == "Too many queued requests" and problem["limit"] == 2
    assert "already has 2 open requests (queued, proving or verifying" in problem["detail"]
    assert "ZKINFER_MAX_QUEUED_PER_CLIENT" in problem["detail"]  # the fix: the operator's
    assert "GET /v1/inferences?status=queued" in problem["detail"]  # the fix: the client's
    assert post(CLIENT_A, **{"Idempotency-Key": "one"}).status_code == 202  # a retry is answered
    assert post(CLIENT_B).status_code == 202
    spec = limited.app.openapi()["paths"]["/v1/inferences"]["post"]["responses"]  # type: ignore[attr-defined]
    assert "Retry-After" in spec["429"]["headers"]
    assert "application/problem+json" in spec["429"]["content"]


def test_a_create_whose_turn_is_held_elsewhere_gets_429_naming_the_cause(
    limited: TestClient, mlp: Compiled, private_pg_url: str
) -> None:
    model_id = register(limited, mlp)
    body = {"model_id": model_id, "input": sample(mlp)}
    with psycopg.connect(private_pg_url) as holder:  # a create of CLIENT_B stuck elsewhere
        holder.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (QUEUE_LOCK, key_id(CLIENT_B))
        )
        busy = limited.post("/v1/inferences", json=body, headers=auth(CLIENT_B))
    assert busy.status_code == 429, busy.text
    assert busy.headers["retry-after"] == str(CREATES_BUSY_RETRY_AFTER_S)
    problem = busy.json()
    assert problem["title"] == "Too many concurrent creates"
    assert "too many concurrent creates for this client key" in problem["detail"]


# -- what a claim reads of a long queue -------------------------------------------------------

QUEUE = 20_000


def _fill(url: str, models: list[str], n: int) -> None:
    """``n`` queued requests of 40 clients over ``models``, oldest first in generation order."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO inferences (id, owner, model_id, bundle_digest, input, status, deadline,"
            " request_hash, created_at)"
            " SELECT 'inf_fill_' || g, 'client-' || (g %% 40), (%s::text[])[1 + g %% %s], 'd',"
            " %s, 'queued', now() + interval '1 hour', 'h',"
            " now() - interval '1 hour' + g * interval '1 millisecond'"
            " FROM generate_series(1, %s) AS g",
            (models, len(models), Jsonb({"input_data": [[0.5]]}), n),
        )
        conn.execute("ANALYZE inferences")


def _plans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plans(child)


def _inference_rows_read(url: str, query: str, params: dict[str, Any]) -> tuple[int, set[str]]:
    """Rows of ``inferences`` the query's plan reads (returned or filtered out, every loop), and
    how it reads them."""
    with psycopg.connect(url) as conn:
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query, params).fetchone()
    assert row is not None
    nodes = [n for n in _plans(row[0][0]["Plan"]) if n.get("Relation Name") == "inferences"]
    read = sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"] for n in nodes
    )
    return read, {n["Node Type"] for n in nodes}


def test_a_claim_reads_a_window_of_the_queue_not_the_whole_queue(private_pg_url: str) -> None:
    async def models() -> list[str]:
        (store,) = await _opened(private_pg_url)
        try:
            # two models a provider names, a batch model among them, and one it does not
            return [await _new_model(store), await _new_model(store, 4), await _new_model(store)]
        finally:
            await store.pool.close()

    named = asyncio.run(models())
    _fill(private_pg_url, named, QUEUE)
    now = datetime.now(UTC)
    # every batch ripe, or none (then whether a batch is full is counted, up to its size)
    for models_named, wait in itertools.product(([], named[:2]), (timedelta(0), timedelta(days=1))):
        query, params = ready_groups(
            "prover", models=models_named, now=now, max_attempts=3, batch_wait=wait
        )
        read, how = _inference_rows_read(private_pg_url, query, params)
        assert "Seq Scan" not in how, how
        # the window of every model named (or of the whole queue), and the groups' rows
        assert read <= max(1, len(models_named)) * WINDOW + WINDOW, (read, how)


def test_migration_0005_finds_indexes_an_operator_built_beforehand(private_pg_url: str) -> None:
    """An operator may build 0005's indexes with CREATE INDEX CONCURRENTLY before upgrading: the
    migration then finds them (IF NOT EXISTS) instead of failing."""
    with psycopg.connect(private_pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 5")
        conn.execute("DROP INDEX inferences_owner_open")
        conn.execute(
            "CREATE INDEX CONCURRENTLY inferences_owner_open ON inferences (owner, deadline)"
            " WHERE status IN ('queued', 'proving', 'verifying')"
        )
    assert migrate(private_pg_url) == ["0005_bounded_queue.sql"]
