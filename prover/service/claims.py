"""Which queued requests one claim leases: the oldest request alone, or a batch of them.

A model whose bundle has N > 1 slots (``models.slots``) is proven N requests at a time: the
requests of ONE model and ONE client (a batch proof shows every slot's input and output to
whoever reads it, so clients never share a batch), leased together once N are queued or the
oldest of them has waited ``batch_wait``; the slots left over are padding. Any other model's
requests are leased one at a time, oldest first, as before. Rows are locked ``FOR UPDATE SKIP
LOCKED``: concurrent claims never lease one request twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from prover.service.catalog import Row

__all__ = ["Batch", "lock_batch"]

# A request this provider may lease now (named parameters: now, max, models, provider).
_ELIGIBLE = (
    "i.status = 'queued' AND i.deadline > %(now)s AND i.attempts < %(max)s"
    " AND (cardinality(%(models)s::text[]) = 0 OR i.model_id = ANY(%(models)s))"
    " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.inference_id = i.id"
    " AND a.provider = %(provider)s AND a.outcome = 'failed' AND a.retryable IS FALSE)"
)

# Queues of one model and one client that are ready to lease, oldest request first.
_READY_GROUPS = (
    "SELECT i.model_id, i.owner, m.slots FROM inferences i JOIN models m ON m.id = i.model_id"
    f" WHERE {_ELIGIBLE} GROUP BY i.model_id, i.owner, m.slots"
    " HAVING m.slots = 1 OR count(*) >= m.slots OR min(i.created_at) <= %(ripe)s"
    " ORDER BY min(i.created_at), i.model_id, i.owner LIMIT %(groups)s"
)

_LOCK_GROUP = (
    f"SELECT i.* FROM inferences i WHERE {_ELIGIBLE}"
    " AND i.model_id = %(model)s AND i.owner = %(owner)s"
    " ORDER BY i.created_at, i.id LIMIT %(slots)s FOR UPDATE OF i SKIP LOCKED"
)

#: How many ready queues one claim looks at before it gives up for this poll.
GROUPS_PER_CLAIM = 16


@dataclass(frozen=True)
class Batch:
    """The requests one lease covers, locked, in slot order (slot s is ``rows[s]``);
    ``size`` is the model's slot count (1: a request served alone)."""

    rows: tuple[Row, ...]
    size: int

    @property
    def padding(self) -> tuple[int, ...]:
        """The slots no request fills: proven with the bundle's fixed padding input."""
        return tuple(range(len(self.rows), self.size))


async def lock_batch(
    conn: AsyncConnection[DictRow],
    provider: str,
    *,
    models: list[str],
    now: datetime,
    max_attempts: int,
    batch_wait: timedelta,
) -> Batch | None:
    """Lock the next requests ``provider`` may lease (inside the caller's transaction), or None.

    For a slotted model, up to N requests of one model and one client, once N are queued or the
    oldest has waited ``batch_wait`` (what other claims hold is skipped, so what is left must
    itself be full or ripe)."""
    params = {
        "now": now,
        "max": max_attempts,
        "models": models,
        "provider": provider,
        "ripe": now - batch_wait,
        "groups": GROUPS_PER_CLAIM,
    }
    cur = await conn.execute(_READY_GROUPS, params)
    for group in await cur.fetchall():
        slots = int(group["slots"])
        cur = await conn.execute(
            _LOCK_GROUP,
            {**params, "model": group["model_id"], "owner": group["owner"], "slots": slots},
        )
        rows = tuple(dict(r) for r in await cur.fetchall())
        if not rows:
            continue
        if slots == 1 or len(rows) == slots or rows[0]["created_at"] <= now - batch_wait:
            return Batch(rows, slots)
    return None
