"""The queue's side of a request: the verdict on a submitted proof, and the reaper that hands
expired leases back and ends requests past their deadline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from prover.service import leases as lm
from prover.service.catalog import Row, UnknownId
from prover.service.inferences import Inferences
from prover.service.leases import Status
from prover.service.rows import close_attempt, gave_up_before, lock, machine, write

__all__ = ["SlotRequest", "Submission", "Verdicts"]


@dataclass(frozen=True)
class SlotRequest:
    """One request of a submitted lease: its slot in the batch and its stored input."""

    slot: int
    inference_id: str
    values: list[list[float]]


@dataclass(frozen=True)
class Submission:
    """A lease whose proof awaits (``pending``) or had its verdict, with what verifying needs:
    the proof, the model's bundle, every request the lease covered (``covered``: what the proof
    must hold, even for a request canceled since) and those still awaiting the verdict
    (``requests``), in slot order."""

    lease_id: str
    pending: bool
    proof: Any
    provider: str
    model_id: str
    bundle_dir: str
    bundle_digest: str
    batch_size: int
    padding: tuple[int, ...]
    requests: tuple[SlotRequest, ...]
    covered: tuple[SlotRequest, ...]


class Verdicts(Inferences):
    """Client requests, plus what the queue worker records: verdicts and reaped leases."""

    # -- verification -------------------------------------------------------------------------

    async def submission(self, lease_id: str) -> Submission:
        """A submitted lease with its requests' inputs and the model's bundle, for the verifier."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT a.outcome, a.proof, a.provider, a.slot, a.batch_size, a.padding,"
                " i.id AS inference_id, i.input, i.model_id, m.bundle_dir, m.bundle_digest"
                " FROM attempts a JOIN inferences i ON i.id = a.inference_id"
                " JOIN models m ON m.id = i.model_id WHERE a.lease_id = %s ORDER BY a.slot",
                (lease_id,),
            )
            rows = await cur.fetchall()
        if not rows:
            raise UnknownId(f"no lease {lease_id!r}")
        submitted = [r for r in rows if r["outcome"] == "submitted"]
        first = (submitted or rows)[0]
        return Submission(
            lease_id=lease_id,
            pending=bool(submitted),
            proof=first["proof"],
            provider=first["provider"],
            model_id=first["model_id"],
            bundle_dir=first["bundle_dir"],
            bundle_digest=first["bundle_digest"],
            batch_size=first["batch_size"],
            padding=tuple(first["padding"]),
            requests=tuple(
                SlotRequest(r["slot"], r["inference_id"], r["input"]["input_data"])
                for r in submitted
            ),
            covered=tuple(
                SlotRequest(r["slot"], r["inference_id"], r["input"]["input_data"]) for r in rows
            ),
        )

    async def decide(
        self,
        lease_id: str,
        *,
        valid: bool,
        reason: str,
        outputs: Mapping[int, list[list[float]] | None] | None,
        proof: dict[str, Any] | None,
        calldata: str | None,
        max_attempts: int,
        proof_sha256: str | None = None,
    ) -> list[Row]:
        """Record the service's verdict on a submitted lease; the requests it changed (none if
        it was decided already).

        ``outputs`` maps each slot to its request's outputs. An accepted proof gives every
        request of the batch its own outputs, the canonical ``proof`` and its slot; a rejected
        one sends every request back to the queue and counts once against its provider, even
        when a request was canceled while it was being verified. A valid proof whose bytes
        (``proof_sha256``) were accepted before for the same model is a copy: rejected, reason
        ``replay``, and counted against its provider."""
        written: list[Row] = []
        async with self.pool.connection() as conn, conn.transaction():
            sub = await self.submission(lease_id)
            ids = sorted(r.inference_id for r in sub.requests)  # id order, as every lease lock
            rows = {i: await lock(conn, i) for i in ids}
            cur = await conn.execute(
                "SELECT inference_id, outcome, provider, prove_s, slot, batch_size, padding"
                " FROM attempts WHERE lease_id = %s ORDER BY slot FOR UPDATE",
                (lease_id,),
            )
            attempts = [a for a in await cur.fetchall() if a["outcome"] == "submitted"]
            if not attempts:
                return written
            provider = attempts[0]["provider"]
            if valid and proof_sha256 is not None:
                cur = await conn.execute(
                    "SELECT 1 FROM attempts WHERE model_id = %s AND proof_sha256 = %s"
                    " AND outcome = 'accepted'",
                    (sub.model_id, proof_sha256),
                )
                if await cur.fetchone() is not None:
                    valid, reason = False, "replay"
                else:
                    await conn.execute(
                        "UPDATE attempts SET model_id = %s, proof_sha256 = %s WHERE lease_id = %s",
                        (sub.model_id, proof_sha256, lease_id),
                    )
            if not valid:
                await conn.execute(
                    "INSERT INTO providers (id, rejected) VALUES (%s, 1)"
                    " ON CONFLICT (id) DO UPDATE SET rejected = providers.rejected + 1",
                    (provider,),
                )
            for attempt in attempts:
                row = rows.get(attempt["inference_id"]) or await lock(conn, attempt["inference_id"])
                if row["status"] != Status.VERIFYING or row["lease_id"] != lease_id:
                    # canceled while verifying: the verdict is recorded, nothing is accepted
                    await close_attempt(
                        conn,
                        lease_id,
                        "rejected" if not valid else "canceled",
                        reason or "request no longer open",
                        row["id"],
                    )
                    continue
                if valid:
                    new = lm.accept(machine(row))
                    await close_attempt(conn, lease_id, "accepted", None, row["id"])
                    await conn.execute(
                        "UPDATE providers SET accepted = accepted + 1 WHERE id = %s", (provider,)
                    )
                    await conn.execute(
                        "UPDATE inferences SET outputs = %s, proof = %s, calldata = %s,"
                        " provider = %s, accepted_lease = %s, prove_s = %s, slot = %s,"
                        " batch_size = %s, padding = %s WHERE id = %s",
                        (
                            Jsonb((outputs or {}).get(attempt["slot"])),
                            Jsonb(proof),
                            calldata,
                            provider,
                            lease_id,
                            attempt["prove_s"],
                            attempt["slot"],
                            attempt["batch_size"],
                            attempt["padding"],
                            row["id"],
                        ),
                    )
                else:
                    new = lm.reject(machine(row), reason, max_attempts=max_attempts)
                    await close_attempt(conn, lease_id, "rejected", reason, row["id"])
                new = lm.Request(new.status, new.attempts, new.deadline, None, new.reason)
                written.append(await write(conn, row["id"], new))
        return written

    async def verdict(self, lease_id: str) -> tuple[str | None, str | None]:
        """``(outcome, reason)`` of a lease: ``submitted`` while the verdict is pending; for a
        batch, ``accepted`` when its proof was accepted for any of its requests."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT outcome, reason FROM attempts WHERE lease_id = %s ORDER BY slot",
                (lease_id,),
            )
            rows = await cur.fetchall()
        if not rows:
            raise UnknownId(f"no lease {lease_id!r}")
        for wanted in ("submitted", "accepted", "rejected"):
            for r in rows:
                if r["outcome"] == wanted:
                    return r["outcome"], r["reason"]
        return rows[0]["outcome"], rows[0]["reason"]

    async def pending_submissions(self, older_than: datetime) -> list[str]:
        """Leases whose proof still awaits a verdict since before ``older_than``."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT lease_id FROM attempts"
                " WHERE outcome = 'submitted' AND submitted_at < %s",
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
                    await close_attempt(conn, row["lease_id"], "expired", new.reason, row["id"])
                changed.append(await write(conn, row["id"], new))
        return changed
