"""Which queued requests one claim leases: the oldest request alone, or a batch of them.

A model whose bundle has N > 1 slots (``models.slots``) is proven N requests at a time: the
requests of ONE model and ONE client (a batch proof shows every slot's input and output to
whoever reads it, so clients never share a batch), leased together once N are queued or the
oldest of them has waited ``batch_wait``; the slots left over are padding. Any other model's
requests are leased one at a time, oldest first, as before. Rows are locked ``FOR UPDATE SKIP
LOCKED``: concurrent claims never lease one request twice.

A claim reads a window of the oldest requests it may lease, never the whole queue: the oldest
``WINDOW`` of any model, or for a provider that names its models the oldest ``WINDOW`` of each
named model (then the oldest ``WINDOW`` of those); its cost grows with the models named, not with
the queue. Queues
are served oldest request first across clients, as if the whole queue were read, except when no
queue in the window is ready (every one is a batch model's partial batch younger than
``batch_wait``): then a ready queue behind the window waits, at most until the oldest of those
ripens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from prover.service.catalog import Row

__all__ = ["GROUPS_PER_CLAIM", "WINDOW", "Batch", "lock_batch", "ready_groups"]

# A request this provider may lease now (named parameters: now, max, provider).
_ELIGIBLE = (
    "i.status = 'queued' AND i.deadline > %(now)s AND i.attempts < %(max)s"
    " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.inference_id = i.id"
    " AND a.provider = %(provider)s AND a.outcome = 'failed' AND a.retryable IS FALSE)"
)

# The window: the oldest ``window`` eligible requests of any model (index inferences_queue) ...
_WINDOW_ANY = (
    f"SELECT i.model_id, i.owner, i.created_at FROM inferences i WHERE {_ELIGIBLE}"
    " ORDER BY i.created_at LIMIT %(window)s"
)
# ... or of the named models: the oldest of each model, then the oldest of those. Each model's
# rows are read in index inferences_model_queue: ``= ANY(ARRAY[m.id])`` with ``ORDER BY model_id,
# created_at`` is an order only that index gives (with ``= m.id`` the planner drops model_id from
# the order and may walk inferences_queue instead, past every other model's rows).
_WINDOW_NAMED = (
    "SELECT c.* FROM (SELECT DISTINCT unnest(%(models)s::text[])) AS m (id)"
    " CROSS JOIN LATERAL (SELECT i.model_id, i.owner, i.created_at FROM inferences i"
    f" WHERE i.model_id = ANY(ARRAY[m.id]) AND {_ELIGIBLE} ORDER BY i.model_id, i.created_at"
    " LIMIT %(window)s) AS c"
    " ORDER BY c.created_at LIMIT %(window)s"
)


def _ready_groups(window: str) -> str:
    """Queues of one model and one client met in the window that are ready to lease, oldest
    request first: a one-slot model's, a ripe one, or one with a full batch queued (counted up
    to the batch size in index inferences_batch_queue)."""
    return (
        f"WITH candidates AS ({window}), groups AS (SELECT model_id, owner,"
        " min(created_at) AS oldest FROM candidates GROUP BY model_id, owner)"
        " SELECT g.model_id, g.owner, m.slots FROM groups g JOIN models m ON m.id = g.model_id"
        " WHERE m.slots = 1 OR g.oldest <= %(ripe)s OR (SELECT count(*) FROM (SELECT 1"
        f" FROM inferences i WHERE i.model_id = g.model_id AND i.owner = g.owner AND {_ELIGIBLE}"
        " ORDER BY i.created_at LIMIT m.slots) AS queued) >= m.slots"
        " ORDER BY g.oldest, g.model_id, g.owner LIMIT %(groups)s"
    )


_READY_GROUPS_ANY = _ready_groups(_WINDOW_ANY)
_READY_GROUPS_NAMED = _ready_groups(_WINDOW_NAMED)

_LOCK_GROUP = (
    f"SELECT i.* FROM inferences i WHERE {_ELIGIBLE}"
    " AND i.model_id = %(model)s AND i.owner = %(owner)s"
    " ORDER BY i.created_at, i.id LIMIT %(slots)s FOR UPDATE OF i SKIP LOCKED"
)

#: How many ready queues one claim looks at before it gives up for this poll.
GROUPS_PER_CLAIM = 16
#: How many of the oldest eligible requests one claim reads to find them (of each model a provider
#: names, then of all of those): what a claim costs does not grow with the queue.
WINDOW = 512


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


def ready_groups(
    provider: str, *, models: list[str], now: datetime, max_attempts: int, batch_wait: timedelta
) -> tuple[str, dict[str, Any]]:
    """The query (and its parameters) of the queues ready to lease, oldest request first, among
    the window of the oldest requests ``provider`` may lease of ``models`` (empty: any model)."""
    params = {
        "now": now,
        "max": max_attempts,
        "models": models,
        "provider": provider,
        "ripe": now - batch_wait,
        "groups": GROUPS_PER_CLAIM,
        "window": WINDOW,
    }
    return (_READY_GROUPS_NAMED if models else _READY_GROUPS_ANY), params


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
    query, params = ready_groups(
        provider, models=models, now=now, max_attempts=max_attempts, batch_wait=batch_wait
    )
    cur = await conn.execute(query, params)
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
