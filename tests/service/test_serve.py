"""``zkinfer serve`` as a real process, and the settings it refuses."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from prover.errors import UsageError
from prover.service.runner import register_reference_models
from prover.service.webhooks import WebhookUrlError, check_webhook_url
from prover.settings import DEV_CLIENT_KEY, Settings
from tests.helpers import REPO
from tests.helpers.e2e import free_port, service_env
from tests.helpers.service import (
    CLIENT_A,
    PROVIDER,
    auth,
    count_rows,
    temporary_database,
)

KEYLESS = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith("ZKINFER_") or k in ("ZKINFER_HOME", "ZKINFER_CACHE_DIR")
}


def test_settings_split_keys_and_refuse_unsafe_combinations_for_serving() -> None:
    s = Settings(api_keys="k" * 16 + ", " + "j" * 16, provider_keys="p" * 16)  # type: ignore[arg-type]
    assert s.client_keys() == ["k" * 16, "j" * 16]
    s.check_for_serving()
    unsafe = [
        ({"api_keys": [], "provider_keys": [], "dev": False}, "ZKINFER_API_KEYS"),
        ({"api_keys": "short", "provider_keys": "p" * 16}, "at least 16"),
        ({"api_keys": "k" * 16, "provider_keys": "k" * 16}, "both a client key and a provider key"),
        ({"dev": True, "default_deadline_s": 10, "max_deadline_s": 5}, "ZKINFER_MAX_DEADLINE_S"),
    ]
    for fields, fragment in unsafe:
        settings = Settings.model_validate(fields)  # a command that does not serve may use it
        with pytest.raises(UsageError, match=fragment):
            settings.check_for_serving()
    assert Settings(dev=True, api_keys=[], provider_keys=[]).client_keys() == [DEV_CLIENT_KEY]
    assert "k" * 16 not in repr(s)  # keys are secrets


def test_the_app_factory_refuses_settings_unsafe_for_serving() -> None:
    from prover.service.app import create_app
    from prover.service.store import Store

    keyless = Settings(api_keys=[], provider_keys=[], dev=False)
    with pytest.raises(UsageError, match="ZKINFER_API_KEYS"):
        create_app(keyless, Store("postgresql://unused.invalid/zkinfer"))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://user:pw@example.com/",
        "ftp://example.com/",
        "https:///nohost",
        "https://example.com:0/",
        "https://example.com/" + "a" * 2000,
    ],
)
def test_webhook_urls_that_are_refused_outside_dev_mode(url: str) -> None:
    with pytest.raises(WebhookUrlError):
        check_webhook_url(url, allow_private=False)


def test_a_public_https_webhook_url_is_accepted() -> None:
    assert check_webhook_url("https://hooks.example.com/zk", allow_private=False)


def _serve_fails(*args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """``zkinfer serve ARGS`` without keys (and with ``database_url``), expected to stop at once."""
    env = {**KEYLESS, "PYTHONPATH": str(REPO)}
    if database_url is not None:
        env["ZKINFER_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "prover", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_without_keys_is_a_usage_error() -> None:
    r = _serve_fails("--json")
    assert r.returncode == 2, r.stderr
    error = json.loads(r.stdout)["error"]["message"]
    assert "ZKINFER_API_KEYS" in error and "--dev" in error
    assert "Traceback" not in r.stderr


def test_serve_refuses_a_chain_id_that_zkinfer_chain_id_would_refuse() -> None:
    # the settings are copied with the command line's choices, unvalidated: the option checks
    r = _serve_fails("--dev", "--chain-id", "0", database_url="postgresql://x@127.0.0.1:1/x")
    assert r.returncode == 2, r.stderr
    assert "--chain-id" in r.stderr and "Traceback" not in r.stderr


def test_an_unreachable_database_is_an_environment_error_naming_the_server() -> None:
    r = _serve_fails("--dev", "--json", database_url="postgresql://svc:s3cret-pw@127.0.0.1:1/zk")
    assert r.returncode == 3, r.stderr
    error = json.loads(r.stdout)["error"]
    assert error["type"] == "DatabaseUnavailable"
    assert "svc@127.0.0.1:1/zk" in error["message"]
    assert "ZKINFER_DATABASE_URL" in error["message"]
    assert "s3cret-pw" not in r.stdout + r.stderr
    assert "internal error" not in r.stdout + r.stderr and "Traceback" not in r.stderr


@pytest.mark.postgres
def test_serve_runs_migrations_the_api_and_a_queue_worker_and_stops_on_sigterm(
    pg_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(pg_url, tmp_path)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prover", "serve", "--port", str(port), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        assert started["ok"] is True and started["url"] == base
        give_up = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.3)
        assert httpx.get(f"{base}/readyz").json()["database"] == "ok"
        r = httpx.post(
            f"{base}/v1/inferences",
            json={"model_id": "nope", "input": {"input_data": [[1.0]]}},
            headers=auth(CLIENT_A),
        )
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        claim = httpx.post(  # a model nobody asked for: the shared database may hold others' work
            f"{base}/v1/leases", json={"models": ["none"], "wait_s": 0}, headers=auth(PROVIDER)
        )
        assert claim.status_code == 204
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-2000:]
    with pytest.raises(ProcessLookupError):  # the queue worker was stopped and reaped too
        os.kill(started["queue_worker_pid"], 0)


@pytest.mark.postgres
def test_reference_models_are_registered_compiling_and_queued_once(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models" / "breast_cancer_mlp", models / "breast_cancer_mlp")
    (models / "not_a_model").mkdir()
    settings = Settings(dev=True, home=tmp_path / "home")
    with temporary_database() as url:  # no queue worker here: the job stays queued
        assert asyncio.run(register_reference_models(settings, url, models)) == [
            "breast_cancer_mlp"
        ]
        assert asyncio.run(register_reference_models(settings, url, models)) == []
        assert count_rows(url, "SELECT count(*) FROM models WHERE status = 'compiling'") == 1
        jobs = count_rows(
            url,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'zkinfer:compile_model'"
            " AND args->>'model_id' = 'breast_cancer_mlp'",
        )
        assert jobs == 1
