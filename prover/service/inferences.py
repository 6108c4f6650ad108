"""A client's requests: create (with an Idempotency-Key), read, list in pages, cancel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from datetime import datetime

from psycopg import AsyncConnection, errors
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from prover.service import leases as lm
from prover.service.catalog import Catalog, Row, UnknownId
from prover.service.leases import Status
from prover.service.rows import close_attempt, lock, machine, write

__all__ = ["CreatesBusy", "IdempotencyConflict", "Inferences", "QueueFull", "UnknownCursor"]


class UnknownCursor(ValueError):
    """A page cursor that names none of the caller's requests."""


class IdempotencyConflict(ValueError):
    """An Idempotency-Key was reused with a different request body."""


class QueueFull(ValueError):
    """A client already has as many open requests (queued, proving or verifying, deadline not
    passed) as the service allows (``limit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this client key already has {limit} open requests (queued, proving or verifying)"
        )
        self.limit = limit


class CreatesBusy(ValueError):
    """Too many creates of one client key at once: they take turns, and this one could not get
    its turn (more than :data:`MAX_WAITING_CREATES` waiting in this process, or the turn held
    elsewhere for longer than :data:`CREATE_LOCK_TIMEOUT_S`)."""


#: pg_advisory_xact_lock's first key for "one client's creates" (the second: hashtext(owner)).
QUEUE_LOCK = 0x7A6B71  # "zkq"
#: How long a create waits for its client's advisory lock (held by a create of the same client in
#: another API process) before it is answered 429: a flood of one key's creates cannot hold the
#: pool's connections while they wait.
CREATE_LOCK_TIMEOUT_S = 2
#: How many creates of one client may wait for their turn in one API process (without a
#: connection: only the one whose turn it is takes one); more are answered 429 at once.
MAX_WAITING_CREATES = 32

#: A request that counts against its client's limit: open (it may still be proven) and not past
#: its deadline; a queued request that has used all its attempts can never be leased again.
_OPEN = (
    "owner = %(owner)s AND status IN ('queued', 'proving', 'verifying') AND deadline > now()"
    " AND NOT (status = 'queued' AND %(max)s::int IS NOT NULL AND attempts >= %(max)s::int)"
)


async def _by_key(conn: AsyncConnection[DictRow], owner: str, key: str | None) -> Row | None:
    """The client's request made with this Idempotency-Key, if any."""
    if key is None:
        return None
    cur = await conn.execute(
        "SELECT * FROM inferences WHERE owner = %s AND idempotency_key = %s", (owner, key)
    )
    row = await cur.fetchone()
    return None if row is None else dict(row)


async def _check_room(
    conn: AsyncConnection[DictRow], owner: str, limit: int, max_attempts: int | None
) -> None:
    """Raise :class:`QueueFull` when ``owner`` has ``limit`` open requests (counts at most
    ``limit`` entries of index inferences_owner_open). Open, not only queued: a request a lease
    gives back to the queue was already counted, so no return to the queue passes the limit."""
    cur = await conn.execute(
        f"SELECT count(*) AS n FROM (SELECT 1 FROM inferences WHERE {_OPEN}"
        " LIMIT %(limit)s) AS open",
        {"owner": owner, "limit": limit, "max": max_attempts},
    )
    row = await cur.fetchone()
    if row is not None and row["n"] >= limit:
        raise QueueFull(limit)


class _Turns:
    """One client's creates in this process, one at a time (see :data:`MAX_WAITING_CREATES`)."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _busy(why: str) -> CreatesBusy:
    return CreatesBusy(
        f"too many concurrent creates for this client key: {why}; a key's creates take turns, "
        "so send them one after another (or a few at a time) and try again after Retry-After"
    )


class Inferences(Catalog):
    """The catalog, and the requests clients make."""

    def __init__(self, conninfo: str, *, max_size: int = 10) -> None:
        super().__init__(conninfo, max_size=max_size)
        self._turns: dict[str, _Turns] = {}

    @asynccontextmanager
    async def _turn(self, owner: str) -> AsyncIterator[None]:
        """Wait, without a pool connection, for ``owner``'s turn to create in this process;
        :class:`CreatesBusy` when :data:`MAX_WAITING_CREATES` already wait."""
        turns = self._turns
        turn = turns.setdefault(owner, _Turns())
        if turn.users > MAX_WAITING_CREATES:  # one holds the turn, MAX_WAITING_CREATES wait
            raise _busy(f"{MAX_WAITING_CREATES} are already waiting in this API process")
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                del turns[owner]

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
        max_attempts: int | None = None,
    ) -> tuple[Row, bool]:
        """Queue a request; with a known ``idempotency_key``, the first request and False.

        Raises :class:`QueueFull` when ``owner`` already has ``max_queued`` open requests (None:
        no limit; requests past their deadline, and queued ones with ``max_attempts`` used, do not
        count), :class:`CreatesBusy` when too many of its creates wait for their turn; a known
        ``idempotency_key`` still returns its request."""
        new_id = "inf_" + uuid.uuid4().hex
        # only the create whose turn it is takes a connection (see _turn)
        turn = nullcontext() if max_queued is None else self._turn(owner)
        async with turn, self.pool.connection() as conn, conn.transaction():
            if max_queued is not None:
                # One client's creates take turns, whichever API process serves them: no other
                # create of this client can queue a request between the count and the insert.
                # The wait is bounded, so creates held up elsewhere cannot pin the pool.
                await conn.execute(f"SET LOCAL lock_timeout = '{CREATE_LOCK_TIMEOUT_S}s'")
                try:
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (QUEUE_LOCK, owner)
                    )
                except errors.LockNotAvailable:
                    raise _busy(
                        f"another create of this key held its turn for over "
                        f"{CREATE_LOCK_TIMEOUT_S} s"
                    ) from None
                await conn.execute("SET LOCAL lock_timeout TO DEFAULT")
                if await _by_key(conn, owner, idempotency_key) is None:
                    await _check_room(conn, owner, max_queued, max_attempts)
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
