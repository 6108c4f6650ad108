"""The queue's side of a request: the verdict on a submitted proof, and the reaper that hands
expired leases back and ends requests past their deadline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from prover.service import leases as lm
from prover.service.catalog import Row, UnknownId
from prover.service.inferences import Inferences
from prover.service.leases import Status
from prover.service.rows import close_attempt, gave_up_before, lock, machine, write

__all__ = ["Verdicts"]


class Verdicts(Inferences):
    """Client requests, plus what the queue worker records: verdicts and reaped leases."""

    # -- verification -------------------------------------------------------------------------

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
            row = await lock(conn, sub["inference_id"])
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
                await close_attempt(
                    conn,
                    lease_id,
                    "rejected" if not valid else "canceled",
                    reason or "request no longer open",
                )
                return None
            if valid:
                new = lm.accept(machine(row))
                await close_attempt(conn, lease_id, "accepted", None)
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
                new = lm.reject(machine(row), reason, max_attempts=max_attempts)
                await close_attempt(conn, lease_id, "rejected", reason)
            new = lm.Request(new.status, new.attempts, new.deadline, None, new.reason)
            return await write(conn, row["id"], new)

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
                counts = row["lease_provider"] is None or not await gave_up_before(
                    conn, row["id"], row["lease_provider"]
                )
                new = lm.reap(machine(dict(row)), now=now, max_attempts=max_attempts, counts=counts)
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
                    await close_attempt(conn, row["lease_id"], "expired", new.reason)
                changed.append(await write(conn, row["id"], new))
        return changed
