"""Shared by the service tests: one throwaway database, one real queue worker process and one
API (FastAPI's TestClient over the real app) per session."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from prover.service.app import create_app
from prover.service.models import register_bundle
from prover.service.store import Store
from prover.settings import Settings
from tests.conftest import Compiled
from tests.helpers.e2e import queue_process, service_env
from tests.helpers.service import CLIENT_A, SERVICE_ENV, auth, temporary_database


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def worker(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    log = tmp_path_factory.mktemp("queue") / "worker.log"
    # the session's data directory, whose development SRS uploads compile with
    with queue_process(service_env(pg_url, Path(os.environ["ZKINFER_HOME"])), log):
        yield log


@pytest.fixture(scope="session")
def api(
    pg_url: str, worker: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path_factory.mktemp("service-home"),
        dev_srs=True,
        api_keys=SERVICE_ENV["ZKINFER_API_KEYS"].split(","),  # type: ignore[arg-type]
        provider_keys=SERVICE_ENV["ZKINFER_PROVIDER_KEYS"].split(","),  # type: ignore[arg-type]
        dev=True,
        quarantine_after=3,
        max_attempts=5,
        submit_wait_s=60,
        max_body_bytes=256 * 1024,
    )
    with TestClient(create_app(settings, Store(pg_url))) as client:
        yield client


def register(api: TestClient, compiled: Compiled) -> str:
    """The bundle under a model id of its own, so no test sees another test's queue."""
    model_id = f"{compiled.name}-{uuid.uuid4().hex[:8]}"
    store: Store = api.app.state.store  # type: ignore[attr-defined]
    assert api.portal is not None
    api.portal.call(register_bundle, store, model_id, compiled.bundle.root)
    return model_id


def sample(compiled: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(compiled.sample.read_text())
    return {"input_data": doc["input_data"]}


def get_ok(api: TestClient, path: str, key: str = CLIENT_A) -> dict[str, Any]:
    """The JSON body of a GET that must answer 200."""
    r = api.get(path, headers=auth(key))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
