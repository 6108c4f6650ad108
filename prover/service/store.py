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
from prover.service.inferences import IdempotencyConflict, UnknownCursor
from prover.service.rows import close_attempt, gave_up_before, lock, machine, write
from prover.service.verdicts import Verdicts

__all__ = [
    "Claimed",
    "IdempotencyConflict",
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
    """A request just leased, with the token only its provider ever sees."""

    row: Row
    lease_id: str
    token: str


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
    ) -> Claimed | None:
        """Lease the oldest queued request of ``models`` (any model when empty), or None."""
        lease_id = "lease_" + uuid.uuid4().hex
        token = secrets.token_urlsafe(32)
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT * FROM inferences i WHERE status = 'queued' AND deadline > %s"
                " AND attempts < %s AND (cardinality(%s::text[]) = 0 OR model_id = ANY(%s))"
                " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.inference_id = i.id"
                " AND a.provider = %s AND a.outcome = 'failed' AND a.retryable IS FALSE)"
                " ORDER BY created_at, id LIMIT 1 FOR UPDATE OF i SKIP LOCKED",
                (now, max_attempts, models, models, provider),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            expires = min(now + ttl, row["deadline"])
            lease = lm.Lease(lease_id, token_hash(token), provider, expires)
            new = lm.claim(machine(row), lease, now=now, max_attempts=max_attempts)
            await conn.execute(
                "INSERT INTO attempts (lease_id, inference_id, provider, worker, attempt,"
                " claimed_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (lease_id, row["id"], provider, worker, new.attempts, now),
            )
            await conn.execute(
                "UPDATE inferences SET first_claimed_at = coalesce(first_claimed_at, %s)"
                " WHERE id = %s",
                (now, row["id"]),
            )
            written = await write(conn, row["id"], new)
        return Claimed(written, lease_id, token)

    async def _lock_lease(
        self, conn: AsyncConnection[DictRow], lease_id: str, provider: str
    ) -> Row:
        cur = await conn.execute(
            "SELECT inference_id FROM attempts WHERE lease_id = %s AND provider = %s",
            (lease_id, provider),
        )
        found = await cur.fetchone()
        if found is None:
            raise UnknownId(f"no lease {lease_id!r} for this provider")
        return await lock(conn, found["inference_id"])

    async def renew(
        self, provider: str, lease_id: str, token: str, *, ttl: timedelta, now: datetime
    ) -> datetime:
        """Extend a live lease; raises LeaseLost (409) or RequestGone (410)."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await self._lock_lease(conn, lease_id, provider)
            new = lm.renew(machine(row), lease_id, token_hash(token), now=now, ttl=ttl)
            await write(conn, row["id"], new)
        assert new.lease is not None
        return new.lease.expires_at

    async def submit(
        self,
        provider: str,
        lease_id: str,
        token: str,
        *,
        proof: dict[str, Any],
        prove_s: float | None,
        now: datetime,
    ) -> Row:
        """Record a proof on a live lease; the request waits in ``verifying`` for the verdict."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await self._lock_lease(conn, lease_id, provider)
            new = lm.close_for_submission(machine(row), lease_id, token_hash(token), now=now)
            await conn.execute(
                "UPDATE attempts SET outcome = 'submitted', submitted_at = %s, proof = %s,"
                " prove_s = %s WHERE lease_id = %s",
                (now, Jsonb(proof), prove_s, lease_id),
            )
            return await write(conn, row["id"], new)

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
    ) -> Row:
        """The lease holder gave up on the request."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await self._lock_lease(conn, lease_id, provider)
            new = lm.fail(
                machine(row),
                lease_id,
                token_hash(token),
                reason,
                now=now,
                max_attempts=max_attempts,
                counts=not await gave_up_before(conn, row["id"], provider),
            )
            await close_attempt(conn, lease_id, "failed", reason)
            await conn.execute(
                "UPDATE attempts SET retryable = %s WHERE lease_id = %s", (retryable, lease_id)
            )
            await conn.execute(
                "UPDATE providers SET failures = failures + 1 WHERE id = %s", (provider,)
            )
            return await write(conn, row["id"], new)
