"""The part of the store that is not a request's life: the model catalog and what health checks
and metrics read. :class:`~prover.service.store.Store` builds on it."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from prover.service.db import open_pool

__all__ = ["Catalog", "Row", "UnknownId"]

Row = dict[str, Any]


class UnknownId(LookupError):
    """No such model, request or lease (or not visible to the caller)."""


class Catalog:
    """Models, health and metrics over one connection pool (opened by the app's lifespan)."""

    def __init__(self, conninfo: str, *, max_size: int = 10) -> None:
        self.conninfo = conninfo
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] = open_pool(
            conninfo, max_size=max_size
        )

    # -- models -------------------------------------------------------------------------------

    async def put_model(
        self,
        model_id: str,
        *,
        status: str,
        owner: str | None = None,
        reason: str | None = None,
        bundle_dir: str | None = None,
        bundle_digest: str | None = None,
        manifest: dict[str, Any] | None = None,
        slots: int = 1,
    ) -> Row:
        """Create or replace a model's record; ``slots``: requests one proof serves (the bundle's
        slot count; 1 unless it was compiled with ``--batch N`` and has a usable slot layout)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO models"
                " (id, status, owner, reason, bundle_dir, bundle_digest, manifest, slots)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                " status = EXCLUDED.status, reason = EXCLUDED.reason,"
                " bundle_dir = EXCLUDED.bundle_dir, bundle_digest = EXCLUDED.bundle_digest,"
                " manifest = EXCLUDED.manifest, slots = EXCLUDED.slots, updated_at = now()"
                " RETURNING *",
                (
                    model_id,
                    status,
                    owner,
                    reason,
                    bundle_dir,
                    bundle_digest,
                    None if manifest is None else Jsonb(manifest),
                    slots,
                ),
            )
            row = await cur.fetchone()
        assert row is not None
        return dict(row)

    async def get_model(self, model_id: str) -> Row:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT * FROM models WHERE id = %s", (model_id,))
            row = await cur.fetchone()
        if row is None:
            raise UnknownId(f"no model {model_id!r}")
        return dict(row)

    async def list_models(self) -> list[Row]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT * FROM models ORDER BY created_at, id")
            return [dict(r) for r in await cur.fetchall()]

    # -- observability ------------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """Requests per status."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT status, count(*) AS n FROM inferences GROUP BY status")
            return {r["status"]: int(r["n"]) for r in await cur.fetchall()}

    async def ping(self) -> None:
        """Raise if the database cannot answer."""
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")

    async def queue_jobs(self) -> dict[str, int]:
        """Background jobs per status (raises if the queue's schema is missing)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs"
                " GROUP BY status"
            )
            return {r["status"]: int(r["n"]) for r in await cur.fetchall()}

    async def metrics_snapshot(self) -> dict[str, object]:
        """What /metrics reports from the database."""
        async with self.pool.connection() as conn:
            by_status = await self.counts()
            cur = await conn.execute(
                # one per proof: the attempts of a batch share their lease
                "SELECT outcome, reason, count(DISTINCT lease_id) AS n FROM attempts"
                " WHERE outcome IN ('accepted', 'rejected', 'submitted') GROUP BY outcome, reason"
            )
            attempts = [(r["outcome"], r["reason"], int(r["n"])) for r in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT prove_s FROM (SELECT DISTINCT ON (lease_id) lease_id, prove_s, closed_at"
                " FROM attempts WHERE outcome = 'accepted' AND prove_s IS NOT NULL) p"
                " ORDER BY closed_at DESC LIMIT 10000"
            )
            prove = [float(r["prove_s"]) for r in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT extract(epoch FROM finished_at - created_at)::float8 AS s FROM inferences"
                " WHERE status = 'done' ORDER BY finished_at DESC LIMIT 10000"
            )
            e2e = [float(r["s"]) for r in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT count(DISTINCT lease_id) AS n FROM inferences WHERE status = 'proving'"
            )
            leased = await cur.fetchone()
        return {
            "by_status": by_status,
            "active_leases": 0 if leased is None else int(leased["n"]),
            "attempts": attempts,
            "jobs": await self.queue_jobs(),
            "prove": prove,
            "e2e": e2e,
        }
