"""A client's requests: create (with an Idempotency-Key), read, list in pages, cancel."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from prover.service import leases as lm
from prover.service.catalog import Catalog, Row, UnknownId
from prover.service.leases import Status
from prover.service.rows import close_attempt, lock, machine, write

__all__ = ["IdempotencyConflict", "Inferences", "QueueFull", "UnknownCursor"]


class UnknownCursor(ValueError):
    """A page cursor that names none of the caller's requests."""


class IdempotencyConflict(ValueError):
    """An Idempotency-Key was reused with a different request body."""


class QueueFull(ValueError):
    """A client already has as many queued requests as the service allows (``limit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"this client key already has {limit} queued requests")
        self.limit = limit


#: pg_advisory_xact_lock's first key for "one client's creates" (the second: hashtext(owner)).
QUEUE_LOCK = 0x7A6B71  # "zkq"


async def _by_key(conn: AsyncConnection[DictRow], owner: str, key: str | None) -> Row | None:
    """The client's request made with this Idempotency-Key, if any."""
    if key is None:
        return None
    cur = await conn.execute(
        "SELECT * FROM inferences WHERE owner = %s AND idempotency_key = %s", (owner, key)
    )
    row = await cur.fetchone()
    return None if row is None else dict(row)


async def _check_room(conn: AsyncConnection[DictRow], owner: str, limit: int) -> None:
    """Raise :class:`QueueFull` when ``owner`` has ``limit`` queued requests (counts at most
    ``limit`` index entries)."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM (SELECT 1 FROM inferences"
        " WHERE owner = %s AND status = 'queued' LIMIT %s) AS queued",
        (owner, limit),
    )
    row = await cur.fetchone()
    if row is not None and row["n"] >= limit:
        raise QueueFull(limit)


class Inferences(Catalog):
    """The catalog, and the requests clients make."""

    async def create_inference(
        self,
        *,
        owner: str,
        model_id: str,
        bundle_digest: str,
        values: list[list[float]],
        deadline: datetime,
        webhook_url: str | None,
        idempotency_key: str | None,
        request_hash: str,
        max_queued: int | None = None,
    ) -> tuple[Row, bool]:
        """Queue a request; with a known ``idempotency_key``, the first request and False.

        Raises :class:`QueueFull` when ``owner`` already has ``max_queued`` queued requests (None:
        no limit); a known ``idempotency_key`` still returns its request."""
        new_id = "inf_" + uuid.uuid4().hex
        async with self.pool.connection() as conn, conn.transaction():
            if max_queued is not None:
                # One client's creates take turns, whichever API process serves them: no other
                # create of this client can queue a request between the count and the insert.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (QUEUE_LOCK, owner)
                )
                if await _by_key(conn, owner, idempotency_key) is None:
                    await _check_room(conn, owner, max_queued)
            cur = await conn.execute(
                "INSERT INTO inferences (id, owner, model_id, bundle_digest, input, status,"
                " deadline, webhook_url, idempotency_key, request_hash)"
                " VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s)"
                " ON CONFLICT (owner, idempotency_key) DO NOTHING RETURNING *",
                (
                    new_id,
                    owner,
                    model_id,
                    bundle_digest,
                    Jsonb({"input_data": values}),
                    deadline,
                    webhook_url,
                    idempotency_key,
                    request_hash,
                ),
            )
            row = await cur.fetchone()
            if row is not None:
                return dict(row), True
            existing = await _by_key(conn, owner, idempotency_key)
        assert existing is not None  # the conflict that stopped the insert
        if existing["request_hash"] != request_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different request body; "
                "use a new key for a new request"
            )
        return existing, False

    async def get_inference(self, inference_id: str, owner: str | None = None) -> Row:
        """A request; with ``owner``, only if that client made it."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT * FROM inferences WHERE id = %s", (inference_id,))
            row = await cur.fetchone()
        if row is None or (owner is not None and row["owner"] != owner):
            raise UnknownId(f"no inference request {inference_id!r}")
        return dict(row)

    async def list_inferences(
        self,
        owner: str,
        *,
        model_id: str | None,
        status: str | None,
        limit: int,
        after: str | None,
    ) -> list[Row]:
        """One page of a client's requests, oldest first, after the request id ``after``.

        Raises :class:`UnknownCursor` when ``after`` is not one of the client's requests."""
        async with self.pool.connection() as conn:
            if after is not None:
                cur = await conn.execute(
                    "SELECT 1 FROM inferences WHERE id = %s AND owner = %s", (after, owner)
                )
                if await cur.fetchone() is None:
                    raise UnknownCursor(
                        f"after={after!r} is not one of your requests; pass the next_after of "
                        "the previous page, or no cursor for the first page"
                    )
            cur = await conn.execute(
                "SELECT * FROM inferences WHERE owner = %(owner)s"
                " AND (%(model)s::text IS NULL OR model_id = %(model)s)"
                " AND (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (%(after)s::text IS NULL OR (created_at, id) >"
                "  (SELECT created_at, id FROM inferences"
                "   WHERE id = %(after)s AND owner = %(owner)s))"
                " ORDER BY created_at, id LIMIT %(limit)s",
                {
                    "owner": owner,
                    "model": model_id,
                    "status": status,
                    "after": after,
                    "limit": limit,
                },
            )
            return [dict(r) for r in await cur.fetchall()]

    async def cancel(self, inference_id: str, owner: str) -> Row:
        """Cancel a client's request; the lease holder learns it on its next renew (410)."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await lock(conn, inference_id)
            if row["owner"] != owner:
                raise UnknownId(f"no inference request {inference_id!r}")
            new = lm.cancel(machine(row))
            if row["lease_id"] is not None and row["status"] != Status.VERIFYING:
                # a submitted proof keeps its attempt open: its verdict is still recorded
                await close_attempt(
                    conn, row["lease_id"], "canceled", "canceled by the client", inference_id
                )
            return await write(conn, inference_id, new)
