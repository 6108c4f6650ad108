"""The service's durable state in PostgreSQL: requests, leases (attempts) and providers.

:class:`Store` is the one object the app and the queue use. It is layered by concern: the model
catalog (:mod:`~prover.service.catalog`), clients' requests (:mod:`~prover.service.inferences`),
verdicts and the reaper (:mod:`~prover.service.verdicts`), and here the providers' leases.

Every change to a request locks its row (``FOR UPDATE``), applies one transition of the pure state
machine in :mod:`prover.service.leases` and writes the result back in the same transaction, so any
number of API and queue processes can share one database. Claiming skips rows other transactions
hold (``FOR UPDATE SKIP LOCKED``): two providers never get the same request.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from prover.core.hashing import sha256_text
from prover.service import leases as lm
from prover.service.catalog import Row, UnknownId
from prover.service.claims import lock_batch
from prover.service.inferences import CreatesBusy, IdempotencyConflict, QueueFull, UnknownCursor
from prover.service.rows import close_attempt, gave_up_before, lock, machine, write
from prover.service.verdicts import Verdicts

__all__ = [
    "Claimed",
    "CreatesBusy",
    "IdempotencyConflict",
    "QueueFull",
    "Row",
    "Store",
    "UnknownCursor",
    "UnknownId",
    "token_hash",
]


def token_hash(token: str) -> str:
    """What the database keeps of a lease token."""
    return sha256_text(token)


@dataclass(frozen=True)
class Claimed:
    """Requests just leased together (one, or a batch in slot order), with the token only their
    provider ever sees."""

    rows: tuple[Row, ...]
    lease_id: str
    token: str
    batch_size: int = 1

    @property
    def row(self) -> Row:
        """The request in slot 0 (the only one, unless the lease is a batch)."""
        return self.rows[0]

    @property
    def padding(self) -> tuple[int, ...]:
        """The batch's slots no request fills."""
        return tuple(range(len(self.rows), self.batch_size))


class Store(Verdicts):
    """Async access to the service's tables: the catalog, every request's life and the leases
    providers hold."""

    # -- providers ----------------------------------------------------------------------------

    async def provider(self, provider: str) -> Row:
        """A provider's record (created on first contact)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO providers (id, last_seen_at) VALUES (%s, now())"
                " ON CONFLICT (id) DO UPDATE SET last_seen_at = now() RETURNING *",
                (provider,),
            )
            row = await cur.fetchone()
        assert row is not None
        return dict(row)

    async def claim(
        self,
        provider: str,
        *,
        worker: str,
        models: list[str],
        ttl: timedelta,
        now: datetime,
        max_attempts: int,
        batch_wait: timedelta = timedelta(0),
    ) -> Claimed | None:
        """Lease the oldest queued request of ``models`` (any model when empty), or for a model
        with N slots a batch of up to N requests of one client (see
        :func:`~prover.service.claims.lock_batch`); None when nothing is ready."""
        lease_id = "lease_" + uuid.uuid4().hex
        token = secrets.token_urlsafe(32)
        async with self.pool.connection() as conn, conn.transaction():
            batch = await lock_batch(
                conn,
                provider,
                models=models,
                now=now,
                max_attempts=max_attempts,
                batch_wait=batch_wait,
            )
            if batch is None:
                return None
            written = []
            for slot, row in enumerate(batch.rows):
                expires = min(now + ttl, row["deadline"])
                lease = lm.Lease(lease_id, token_hash(token), provider, expires)
                new = lm.claim(machine(row), lease, now=now, max_attempts=max_attempts)
                await conn.execute(
                    "INSERT INTO attempts (lease_id, inference_id, provider, worker, attempt,"
                    " claimed_at, slot, batch_size, padding)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        lease_id,
                        row["id"],
                        provider,
                        worker,
                        new.attempts,
                        now,
                        slot,
                        batch.size,
                        list(batch.padding),
                    ),
                )
                await conn.execute(
                    "UPDATE inferences SET first_claimed_at = coalesce(first_claimed_at, %s)"
                    " WHERE id = %s",
                    (now, row["id"]),
                )
                written.append(await write(conn, row["id"], new))
        return Claimed(tuple(written), lease_id, token, batch.size)

    async def _lock_lease(
        self, conn: AsyncConnection[DictRow], lease_id: str, provider: str
    ) -> list[Row]:
        """Every request the lease covers, locked (in id order), in slot order."""
        cur = await conn.execute(
            "SELECT inference_id, slot FROM attempts WHERE lease_id = %s AND provider = %s"
            " ORDER BY inference_id",
            (lease_id, provider),
        )
        found = await cur.fetchall()
        if not found:
            raise UnknownId(f"no lease {lease_id!r} for this provider")
        locked = {f["slot"]: await lock(conn, f["inference_id"]) for f in found}
        return [locked[slot] for slot in sorted(locked)]

    async def _held(
        self,
        conn: AsyncConnection[DictRow],
        lease_id: str,
        provider: str,
        token: str,
        now: datetime,
    ) -> list[Row]:
        """The lease's requests the caller still holds (see :func:`~prover.service.leases.held`)."""
        rows = await self._lock_lease(conn, lease_id, provider)
        kept = lm.held([machine(r) for r in rows], lease_id, token_hash(token), now=now)
        return [r for r, k in zip(rows, kept, strict=True) if k]

    async def renew(
        self, provider: str, lease_id: str, token: str, *, ttl: timedelta, now: datetime
    ) -> datetime:
        """Extend a live lease; raises LeaseLost (409) or RequestGone (410)."""
        expires: list[datetime] = []
        async with self.pool.connection() as conn, conn.transaction():
            for row in await self._held(conn, lease_id, provider, token, now):
                new = lm.renew(machine(row), lease_id, token_hash(token), now=now, ttl=ttl)
                await write(conn, row["id"], new)
                assert new.lease is not None
                expires.append(new.lease.expires_at)
        return max(expires)

    async def submit(
        self,
        provider: str,
        lease_id: str,
        token: str,
        *,
        proof: dict[str, Any],
        prove_s: float | None,
        now: datetime,
    ) -> list[Row]:
        """Record a proof on a live lease; its requests wait in ``verifying`` for the verdict."""
        written = []
        async with self.pool.connection() as conn, conn.transaction():
            for row in await self._held(conn, lease_id, provider, token, now):
                new = lm.close_for_submission(machine(row), lease_id, token_hash(token), now=now)
                await conn.execute(
                    "UPDATE attempts SET outcome = 'submitted', submitted_at = %s, proof = %s,"
                    " prove_s = %s WHERE lease_id = %s AND inference_id = %s",
                    (now, Jsonb(proof), prove_s, lease_id, row["id"]),
                )
                written.append(await write(conn, row["id"], new))
        return written

    async def fail(
        self,
        provider: str,
        lease_id: str,
        token: str,
        *,
        reason: str,
        retryable: bool,
        now: datetime,
        max_attempts: int,
    ) -> list[Row]:
        """The lease holder gave up on its requests (a batch: all of them, counted once against
        the provider)."""
        written = []
        async with self.pool.connection() as conn, conn.transaction():
            for row in await self._held(conn, lease_id, provider, token, now):
                new = lm.fail(
                    machine(row),
                    lease_id,
                    token_hash(token),
                    reason,
                    now=now,
                    max_attempts=max_attempts,
                    counts=not await gave_up_before(conn, row["id"], provider),
                )
                await close_attempt(conn, lease_id, "failed", reason, row["id"])
                written.append(await write(conn, row["id"], new))
            await conn.execute(
                "UPDATE attempts SET retryable = %s WHERE lease_id = %s", (retryable, lease_id)
            )
            await conn.execute(
                "UPDATE providers SET failures = failures + 1 WHERE id = %s", (provider,)
            )
        return written
