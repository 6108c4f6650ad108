"""The service as a cluster of real processes over one PostgreSQL database: API and queue worker
crashes with requests queued and leased, and two API processes with provers pointed at either."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Compiled
from tests.helpers.e2e import (
    TERMINAL,
    Client,
    api_process,
    free_port,
    queue_process,
    register,
    service_env,
    start_api,
    worker_process,
)
from tests.helpers.service import PROVIDER, count_rows
from tests.helpers.tiny import tiny_input

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(private_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("service-home")
    return service_env(private_pg_url, home, ZKINFER_LEASE_TTL_S="6", ZKINFER_MAX_ATTEMPTS="5")


def _only(model_id: str) -> tuple[str, ...]:
    """Worker options serving only this test's model: no test proves another test's requests."""
    return ("--model", model_id, "--wait", "5")


def _model(private_pg_url: str, compiled: Compiled) -> str:
    model_id = f"{compiled.name}-{uuid.uuid4().hex[:8]}"
    register(private_pg_url, model_id, compiled.bundle.root)
    return model_id


def _exactly_once(private_pg_url: str, model_id: str, ids: list[str]) -> None:
    """Every request done, each with exactly one accepted proof; no request made twice."""
    assert count_rows(
        private_pg_url, "SELECT count(*) FROM inferences WHERE model_id = %s", model_id
    ) == len(ids)
    accepted = count_rows(
        private_pg_url,
        "SELECT count(*) FROM attempts a JOIN inferences i ON i.id = a.inference_id"
        " WHERE i.model_id = %s AND a.outcome = 'accepted'",
        model_id,
    )
    assert accepted == len(ids)
    distinct = count_rows(
        private_pg_url,
        "SELECT count(DISTINCT a.inference_id) FROM attempts a JOIN inferences i"
        " ON i.id = a.inference_id WHERE i.model_id = %s AND a.outcome = 'accepted'",
        model_id,
    )
    assert distinct == len(ids)


def test_an_api_and_queue_crash_with_requests_queued_and_leased_loses_and_duplicates_nothing(
    env: dict[str, str], private_pg_url: str, tiny: Compiled, tmp_path: Path
) -> None:
    model_id = _model(private_pg_url, tiny)
    port = free_port()
    with queue_process(env, tmp_path / "queue-1.log") as queue:
        api = start_api(env, tmp_path / "api-1.log", port)
        client = Client(api.url)
        ids = [client.request(model_id, tiny_input(i)) for i in range(3)]
        with worker_process(
            api.url, PROVIDER, tmp_path / "w", tmp_path / "w.log", *_only(model_id)
        ) as worker:
            worker.wait_for_stderr("… prove", 180)  # one request leased, the others queued
            assert client.get(ids[0])["status"] == "proving"
            api.stop(signal.SIGKILL)
            queue.send_signal(signal.SIGKILL)
            queue.wait()
            time.sleep(2)  # the worker's renewals and its submission meet a dead service
            with (
                queue_process(env, tmp_path / "queue-2.log"),
                api_process(env, tmp_path / "api-2.log", port),
            ):
                for inference_id in ids:
                    done = client.wait(inference_id, TERMINAL, 240)
                    assert done["status"] == "done", (done, worker.stderr()[-2000:])
    _exactly_once(private_pg_url, model_id, ids)
    statuses = [line["status"] for line in worker.lines]
    assert statuses.count("accepted") + statuses.count("pending") <= len(ids)
    assert "did not answer" not in worker.stderr()


def test_two_api_processes_over_one_database_serve_workers_pointed_at_either(
    env: dict[str, str], private_pg_url: str, tiny: Compiled, tmp_path: Path
) -> None:
    model_id = _model(private_pg_url, tiny)
    with (
        queue_process(env, tmp_path / "queue.log"),
        api_process(env, tmp_path / "api-a.log") as api_a,
        api_process(env, tmp_path / "api-b.log") as api_b,
    ):
        a, b = Client(api_a.url), Client(api_b.url)
        # two requests made through each API process, each read back through the other one
        ids = [(a if i % 2 else b).request(model_id, tiny_input(i)) for i in range(4)]
        with (
            worker_process(
                api_a.url, PROVIDER, tmp_path / "wa", tmp_path / "wa.log", *_only(model_id)
            ) as wa,
            worker_process(
                api_b.url, PROVIDER, tmp_path / "wb", tmp_path / "wb.log", *_only(model_id)
            ) as wb,
        ):
            for n, inference_id in enumerate(ids):
                done = (b if n % 2 else a).wait(inference_id, TERMINAL, 240)  # read via the other
                assert done["status"] == "done"
            deadline = time.monotonic() + 30
            while len(wa.lines) + len(wb.lines) < len(ids) and time.monotonic() < deadline:
                time.sleep(0.2)
        served = [line["inference_id"] for line in wa.lines + wb.lines]
        assert sorted(served) == sorted(ids)  # each request proven by exactly one worker
        assert wa.lines and wb.lines, "both API processes handed out leases"
    _exactly_once(private_pg_url, model_id, ids)
