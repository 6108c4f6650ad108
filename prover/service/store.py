"""The service's durable state in PostgreSQL: requests, leases (attempts) and providers.

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
from prover.service.catalog import Catalog, Row, UnknownId
from prover.service.leases import Status

__all__ = [
    "Claimed",
    "IdempotencyConflict",
    "Row",
    "Store",
    "UnknownCursor",
    "UnknownId",
    "token_hash",
]


class UnknownCursor(ValueError):
    """A page cursor that names none of the caller's requests."""


class IdempotencyConflict(ValueError):
    """An Idempotency-Key was reused with a different request body."""


def token_hash(token: str) -> str:
    """What the database keeps of a lease token."""
    return sha256_text(token)


@dataclass(frozen=True)
class Claimed:
    """A request just leased, with the token only its provider ever sees."""

    row: Row
    lease_id: str
    token: str


def _machine(row: Row) -> lm.Request:
    lease = None
    if row["lease_id"] is not None:
        lease = lm.Lease(
            row["lease_id"], row["lease_token_hash"], row["lease_provider"], row["lease_expires_at"]
        )
    return lm.Request(Status(row["status"]), row["attempts"], row["deadline"], lease, row["reason"])


async def _write(conn: AsyncConnection[DictRow], inference_id: str, req: lm.Request) -> Row:
    lease = req.lease
    cur = await conn.execute(
        "UPDATE inferences SET status = %s, attempts = %s, reason = %s, lease_id = %s,"
        " lease_token_hash = %s, lease_provider = %s, lease_expires_at = %s,"
        " finished_at = CASE WHEN %s THEN now() ELSE finished_at END, updated_at = now()"
        " WHERE id = %s RETURNING *",
        (
            req.status.value,
            req.attempts,
            req.reason,
            lease.lease_id if lease else None,
            lease.token_hash if lease else None,
            lease.provider if lease else None,
            lease.expires_at if lease else None,
            req.status in lm.TERMINAL,
            inference_id,
        ),
    )
    row = await cur.fetchone()
    assert row is not None  # locked above in the same transaction
    return dict(row)


async def _close_attempt(
    conn: AsyncConnection[DictRow], lease_id: str, outcome: str, reason: str | None
) -> None:
    await conn.execute(
        "UPDATE attempts SET outcome = %s, reason = %s, closed_at = now()"
        " WHERE lease_id = %s AND (outcome IS NULL OR outcome = 'submitted')",
        (outcome, reason, lease_id),
    )


async def _gave_up_before(conn: AsyncConnection[DictRow], inference_id: str, provider: str) -> bool:
    """Whether ``provider`` already failed or let a lease expire on this request."""
    cur = await conn.execute(
        "SELECT 1 FROM attempts WHERE inference_id = %s AND provider = %s"
        " AND outcome IN ('failed', 'expired') LIMIT 1",
        (inference_id, provider),
    )
    return await cur.fetchone() is not None


class Store(Catalog):
    """Async access to the service's tables: the catalog, and every request's life."""

    # -- client requests ----------------------------------------------------------------------

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
    ) -> tuple[Row, bool]:
        """Queue a request; with a known ``idempotency_key``, the first request and False."""
        new_id = "inf_" + uuid.uuid4().hex
        async with self.pool.connection() as conn:
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
            cur = await conn.execute(
                "SELECT * FROM inferences WHERE owner = %s AND idempotency_key = %s",
                (owner, idempotency_key),
            )
            existing = await cur.fetchone()
        assert existing is not None  # the conflict that stopped the insert
        if existing["request_hash"] != request_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different request body; "
                "use a new key for a new request"
            )
        return dict(existing), False

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
            row = await self._lock(conn, inference_id)
            if row["owner"] != owner:
                raise UnknownId(f"no inference request {inference_id!r}")
            new = lm.cancel(_machine(row))
            if row["lease_id"] is not None and row["status"] != Status.VERIFYING:
                # a submitted proof keeps its attempt open: its verdict is still recorded
                await _close_attempt(conn, row["lease_id"], "canceled", "canceled by the client")
            return await _write(conn, inference_id, new)

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
            new = lm.claim(_machine(row), lease, now=now, max_attempts=max_attempts)
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
            written = await _write(conn, row["id"], new)
        return Claimed(written, lease_id, token)

    async def _lock(self, conn: AsyncConnection[DictRow], inference_id: str) -> Row:
        cur = await conn.execute(
            "SELECT * FROM inferences WHERE id = %s FOR UPDATE", (inference_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise UnknownId(f"no inference request {inference_id!r}")
        return dict(row)

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
        return await self._lock(conn, found["inference_id"])

    async def renew(
        self, provider: str, lease_id: str, token: str, *, ttl: timedelta, now: datetime
    ) -> datetime:
        """Extend a live lease; raises LeaseLost (409) or RequestGone (410)."""
        async with self.pool.connection() as conn, conn.transaction():
            row = await self._lock_lease(conn, lease_id, provider)
            new = lm.renew(_machine(row), lease_id, token_hash(token), now=now, ttl=ttl)
            await _write(conn, row["id"], new)
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
            new = lm.close_for_submission(_machine(row), lease_id, token_hash(token), now=now)
            await conn.execute(
                "UPDATE attempts SET outcome = 'submitted', submitted_at = %s, proof = %s,"
                " prove_s = %s WHERE lease_id = %s",
                (now, Jsonb(proof), prove_s, lease_id),
            )
            return await _write(conn, row["id"], new)

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
                _machine(row),
                lease_id,
                token_hash(token),
                reason,
                now=now,
                max_attempts=max_attempts,
                counts=not await _gave_up_before(conn, row["id"], provider),
            )
            await _close_attempt(conn, lease_id, "failed", reason)
            await conn.execute(
                "UPDATE attempts SET retryable = %s WHERE lease_id = %s", (retryable, lease_id)
            )
            await conn.execute(
                "UPDATE providers SET failures = failures + 1 WHERE id = %s", (provider,)
            )
            return await _write(conn, row["id"], new)

    # -- verification (queue side) ------------------------------------------------------------

    async def submission(self, lease_id: str) -> Row:
        """A submitted attempt with its request's input and model bundle, for the verifier."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT a.lease_id, a.outcome, a.proof, a.provider, i.id AS inference_id,"
                " i.input, i.status, i.model_id, m.bundle_dir, m.bundle_digest"
                " FROM attempts a JOIN inferences i ON i.id = a.inference_id"
                " JOIN models m ON m.id = i.model_id WHERE a.lease_id = %s",
                (lease_id,),
            )
            row = await cur.fetchone()
        if row is None:
            raise UnknownId(f"no lease {lease_id!r}")
        return dict(row)

    async def decide(
        self,
        lease_id: str,
        *,
        valid: bool,
        reason: str,
        outputs: list[list[float]] | None,
        proof: dict[str, Any] | None,
        calldata: str | None,
        max_attempts: int,
        proof_sha256: str | None = None,
    ) -> Row | None:
        """Record the service's verdict on a submitted proof; None if it was decided already.

        A rejected proof counts against its provider even when the request was canceled while
        it was being verified; an accepted one stores ``proof`` (the canonical document). A
        valid proof whose bytes (``proof_sha256``) were accepted before for the same model is a
        copy: rejected, reason ``replay``, and counted against its provider."""
        async with self.pool.connection() as conn, conn.transaction():
            sub = await self.submission(lease_id)
            row = await self._lock(conn, sub["inference_id"])
            cur = await conn.execute(
                "SELECT outcome, provider, prove_s FROM attempts WHERE lease_id = %s FOR UPDATE",
                (lease_id,),
            )
            attempt = await cur.fetchone()
            if attempt is None or attempt["outcome"] != "submitted":
                return None
            if valid and proof_sha256 is not None:
                cur = await conn.execute(
                    "SELECT 1 FROM attempts WHERE model_id = %s AND proof_sha256 = %s"
                    " AND outcome = 'accepted'",
                    (row["model_id"], proof_sha256),
                )
                if await cur.fetchone() is not None:
                    valid, reason = False, "replay"
                else:
                    await conn.execute(
                        "UPDATE attempts SET model_id = %s, proof_sha256 = %s WHERE lease_id = %s",
                        (row["model_id"], proof_sha256, lease_id),
                    )
            if not valid:
                await conn.execute(
                    "INSERT INTO providers (id, rejected) VALUES (%s, 1)"
                    " ON CONFLICT (id) DO UPDATE SET rejected = providers.rejected + 1",
                    (attempt["provider"],),
                )
            if row["status"] != Status.VERIFYING or row["lease_id"] != lease_id:
                # canceled while verifying: the verdict is recorded, nothing is accepted
                await _close_attempt(
                    conn,
                    lease_id,
                    "rejected" if not valid else "canceled",
                    reason or "request no longer open",
                )
                return None
            if valid:
                new = lm.accept(_machine(row))
                await _close_attempt(conn, lease_id, "accepted", None)
                await conn.execute(
                    "UPDATE providers SET accepted = accepted + 1 WHERE id = %s",
                    (attempt["provider"],),
                )
                await conn.execute(
                    "UPDATE inferences SET outputs = %s, proof = %s, calldata = %s,"
                    " provider = %s, accepted_lease = %s, prove_s = %s WHERE id = %s",
                    (
                        Jsonb(outputs),
                        Jsonb(proof),
                        calldata,
                        attempt["provider"],
                        lease_id,
                        attempt["prove_s"],
                        row["id"],
                    ),
                )
            else:
                new = lm.reject(_machine(row), reason, max_attempts=max_attempts)
                await _close_attempt(conn, lease_id, "rejected", reason)
            new = lm.Request(new.status, new.attempts, new.deadline, None, new.reason)
            return await _write(conn, row["id"], new)

    async def verdict(self, lease_id: str) -> tuple[str | None, str | None]:
        """``(outcome, reason)`` of an attempt: ``submitted`` while the verdict is pending."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT outcome, reason FROM attempts WHERE lease_id = %s", (lease_id,)
            )
            row = await cur.fetchone()
        if row is None:
            raise UnknownId(f"no lease {lease_id!r}")
        return row["outcome"], row["reason"]

    async def pending_submissions(self, older_than: datetime) -> list[str]:
        """Leases whose proof still awaits a verdict since before ``older_than``."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT lease_id FROM attempts WHERE outcome = 'submitted' AND submitted_at < %s",
                (older_than,),
            )
            return [r["lease_id"] for r in await cur.fetchall()]

    # -- reaper -------------------------------------------------------------------------------

    async def reap(self, *, now: datetime, max_attempts: int, limit: int = 100) -> list[Row]:
        """Expired leases back to the queue (or failed), requests past deadline expired."""
        changed: list[Row] = []
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT * FROM inferences"
                " WHERE (status IN ('queued', 'proving') AND deadline <= %s)"
                " OR (status = 'proving' AND lease_expires_at <= %s)"
                " OR (status = 'verifying' AND deadline <= %s)"
                " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (now, now, now - lm.VERIFY_GRACE, limit),
            )
            for row in await cur.fetchall():
                counts = row["lease_provider"] is None or not await _gave_up_before(
                    conn, row["id"], row["lease_provider"]
                )
                new = lm.reap(
                    _machine(dict(row)), now=now, max_attempts=max_attempts, counts=counts
                )
                if new is None:
                    continue
                if row["status"] == Status.VERIFYING:
                    # no verdict in time: the service's failure, not counted against the provider
                    await conn.execute(
                        "UPDATE attempts SET outcome = 'failed', reason = %s, closed_at = now()"
                        " WHERE inference_id = %s AND outcome = 'submitted'",
                        (new.reason, row["id"]),
                    )
                elif row["lease_id"] is not None:
                    await _close_attempt(conn, row["lease_id"], "expired", new.reason)
                changed.append(await _write(conn, row["id"], new))
        return changed
