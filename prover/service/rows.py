"""The steps every change to a request shares: read a locked row into the pure state machine of
:mod:`prover.service.leases`, write its result back, close an attempt (callers hold the
transaction)."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from prover.service import leases as lm
from prover.service.catalog import Row, UnknownId
from prover.service.leases import Status

__all__ = ["close_attempt", "gave_up_before", "lock", "machine", "write"]


def machine(row: Row) -> lm.Request:
    """The state machine's view of a request row."""
    lease = None
    if row["lease_id"] is not None:
        lease = lm.Lease(
            row["lease_id"], row["lease_token_hash"], row["lease_provider"], row["lease_expires_at"]
        )
    return lm.Request(Status(row["status"]), row["attempts"], row["deadline"], lease, row["reason"])


async def write(conn: AsyncConnection[DictRow], inference_id: str, req: lm.Request) -> Row:
    """Store a transition's result on the locked row; the row as written."""
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


async def close_attempt(
    conn: AsyncConnection[DictRow],
    lease_id: str,
    outcome: str,
    reason: str | None,
    inference_id: str | None = None,
) -> None:
    """Close the lease's open attempts (with ``inference_id``: that request's only, the rest of
    a batch goes on)."""
    await conn.execute(
        "UPDATE attempts SET outcome = %s, reason = %s, closed_at = now()"
        " WHERE lease_id = %s AND (%s::text IS NULL OR inference_id = %s)"
        " AND (outcome IS NULL OR outcome = 'submitted')",
        (outcome, reason, lease_id, inference_id, inference_id),
    )


async def gave_up_before(conn: AsyncConnection[DictRow], inference_id: str, provider: str) -> bool:
    """Whether ``provider`` already failed or let a lease expire on this request."""
    cur = await conn.execute(
        "SELECT 1 FROM attempts WHERE inference_id = %s AND provider = %s"
        " AND outcome IN ('failed', 'expired') LIMIT 1",
        (inference_id, provider),
    )
    return await cur.fetchone() is not None


async def lock(conn: AsyncConnection[DictRow], inference_id: str) -> Row:
    """The request's row, locked (``FOR UPDATE``) until the transaction ends."""
    cur = await conn.execute("SELECT * FROM inferences WHERE id = %s FOR UPDATE", (inference_id,))
    row = await cur.fetchone()
    if row is None:
        raise UnknownId(f"no inference request {inference_id!r}")
    return dict(row)
