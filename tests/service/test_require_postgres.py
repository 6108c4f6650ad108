"""Without a PostgreSQL server the service tests skip with the reason on a developer's machine,
and fail with how to start one where ``ZKINFER_REQUIRE_POSTGRES`` is set (``make test``, CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.e2e import free_port
from tests.helpers.service import REQUIRE_ENV

_TEST = """
from tests.helpers.service import temporary_database

def test_needs_a_database():
    with temporary_database():
        pass
"""


def _pytest_without_postgres(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_db.py").write_text(_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the repository's configuration
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if k != REQUIRE_ENV},
            "PYTHONPATH": str(REPO),
            "ZKINFER_TEST_POSTGRES": nobody,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_plain_run_skips_and_names_the_server_it_looked_for(tmp_path: Path) -> None:
    run = _pytest_without_postgres(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout and "no PostgreSQL at postgresql://" in run.stdout


@pytest.mark.parametrize("value", ["1", "true"])
def test_required_postgres_fails_and_says_how_to_start_it(tmp_path: Path, value: str) -> None:
    run = _pytest_without_postgres(tmp_path, **{REQUIRE_ENV: value})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed" in run.stdout and "skipped" not in run.stdout
    assert "no PostgreSQL at postgresql://" in run.stdout
    assert "start PostgreSQL on 127.0.0.1:5432" in run.stdout
