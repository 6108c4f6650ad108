"""A throwaway PostgreSQL database, keys and environment for the service tests (their processes
are started by :mod:`tests.helpers.e2e`)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from prover.service.db import migrate

#: The machine's PostgreSQL (trust auth); override with ZKINFER_TEST_POSTGRES.
ADMIN_URL = os.environ.get("ZKINFER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Set (``make test`` does) to fail instead of skipping the PostgreSQL tests when there is none.
REQUIRE_ENV = "ZKINFER_REQUIRE_POSTGRES"

CLIENT_A = "client-a-" + "0" * 16
CLIENT_B = "client-b-" + "0" * 16
PROVIDER = "provider-honest-" + "0" * 16
PROVIDER_EVIL = "provider-evil-" + "0" * 16
PROVIDER_QUARANTINE = "provider-quarantine-" + "0" * 16
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="  # base64 of a test secret

SERVICE_ENV = {
    "ZKINFER_API_KEYS": f"{CLIENT_A},{CLIENT_B}",
    "ZKINFER_PROVIDER_KEYS": f"{PROVIDER},{PROVIDER_EVIL},{PROVIDER_QUARANTINE}",
    "ZKINFER_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "ZKINFER_DEV": "1",  # webhooks to 127.0.0.1
    "ZKINFER_QUARANTINE_AFTER": "3",
    "ZKINFER_DEV_SRS": "1",
}


@contextlib.contextmanager
def temporary_database() -> Iterator[str]:
    """A uniquely named, migrated database, dropped afterwards. Without a PostgreSQL server the
    test is skipped, or fails when ``ZKINFER_REQUIRE_POSTGRES`` is set (as in CI, where a skip
    would hide every service test)."""
    name = f"zkinfer_test_{os.getpid()}_{secrets.token_hex(4)}"
    missing = ""
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        missing = f"no PostgreSQL at {ADMIN_URL}: {str(exc).strip()}"
    if missing and os.environ.get(REQUIRE_ENV, "").strip().lower() not in {"", "0", "false", "no"}:
        pytest.fail(
            f"{missing}\n{REQUIRE_ENV} is set (make test sets it): start PostgreSQL on "
            "127.0.0.1:5432 with trust authentication for user postgres (e.g. `sudo service "
            "postgresql start`, or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust "
            "postgres:16`), or point ZKINFER_TEST_POSTGRES at another server",
            pytrace=False,
        )
    if missing:
        pytest.skip(missing)
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def count_rows(url: str, sql: str, *args: Any) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])
