"""PostgreSQL: the connection pool and the schema migrations (numbered SQL files).

Migrations run in one transaction under an advisory lock, so several ``zkinfer serve`` processes
starting against one database apply each file exactly once; ``schema_migrations`` records them.
The job queue's own schema (procrastinate) is applied in the same transaction the first time.
"""

from __future__ import annotations

import re
from importlib import resources

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from prover.errors import DatabaseUnavailable

__all__ = ["MIGRATIONS_LOCK", "connect", "describe", "migrate", "migrations", "open_pool"]

#: pg_advisory_xact_lock key shared by every process migrating this database.
MIGRATIONS_LOCK = 0x7A6B696E66  # "zkinf"

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def describe(conninfo: str) -> str:
    """The database a URL names, for messages: user, host, port and name, never the password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "the database URL (it does not parse as a PostgreSQL URL)"
    where = f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"
    return f"PostgreSQL {parts.get('user') or ''}@{where}/{parts.get('dbname') or ''}"


def connect(conninfo: str, *, timeout_s: int = 10) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the service's database; a failure names the server (not the password)."""
    try:
        return psycopg.connect(conninfo, autocommit=False, connect_timeout=timeout_s)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot connect to {describe(conninfo)}: {reason}",
            hint="start that server or correct ZKINFER_DATABASE_URL; without it, zkinfer serve "
            "runs an embedded PostgreSQL in the data directory",
        ) from None


def migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` for each migration shipped with the package, in order."""
    out = []
    for entry in resources.files("prover.service").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            out.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def migrate(conninfo: str) -> list[str]:
    """Apply the migrations this database lacks (and the queue's schema); the names applied."""
    from procrastinate.schema import SchemaManager

    applied: list[str] = []
    with connect(conninfo) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATIONS_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, text in migrations():
            if version in done:
                continue
            conn.execute(sql.SQL(text))  # our own files
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
            )
            applied.append(name)
        has_queue = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if has_queue is None or has_queue[0] is None:
            conn.execute(sql.SQL(SchemaManager.get_schema()))
            applied.append("procrastinate")
        conn.commit()
    return applied


def open_pool(
    conninfo: str, *, min_size: int = 1, max_size: int = 10
) -> AsyncConnectionPool[AsyncConnection[DictRow]]:
    """An (unopened) async pool returning rows as dicts; open it inside the event loop."""
    return AsyncConnectionPool(
        conninfo,
        connection_class=AsyncConnection[DictRow],
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row},
        open=False,
    )
