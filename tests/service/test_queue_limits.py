"""What one claim reads of the queue: the claim's query plan on a queue of 20,000 requests. In a
database of this module's own (``private_pg_url``): its models have no bundle, and the API tests
that list every model of the session's database must not meet them."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from prover.service.claims import WINDOW, ready_groups
from prover.service.store import Store

pytestmark = pytest.mark.postgres


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
