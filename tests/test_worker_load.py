"""Load: hundreds of requests from concurrent clients, proven by two ``zkinfer worker`` processes
through a real ``zkinfer serve`` over PostgreSQL, on the ``tiny_batch`` model (4 slots: one
proof answers up to 4 requests). Every request must reach a terminal state with its own correct
outputs, none lost, none proven twice. Throughput and API latency are measured and reported,
never asserted (set ZKINFER_LOAD_REPORT=FILE to keep them as JSON; ZKINFER_LOAD_REQUESTS changes
the count)."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Compiled
from tests.helpers.e2e import (
    TERMINAL,
    Client,
    api_process,
    queue_process,
    register,
    service_env,
    worker_process,
)
from tests.helpers.service import PROVIDER, count_rows
from tests.helpers.tiny import tiny_input, tiny_outputs

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.load,
    pytest.mark.timeout(3600),  # 200 proofs and verifications on 2 cores
]

REQUESTS = int(os.environ.get("ZKINFER_LOAD_REQUESTS", "200"))
CLIENTS = 8


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * p95, 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


def _post_all(url: str, model_id: str, n: int) -> tuple[dict[str, int], list[float]]:
    """``n`` requests from ``CLIENTS`` concurrent clients (of one API key, so batches fill):
    each id with its input number, and the POST latencies."""
    ids: dict[str, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client(k: int) -> None:
        c = Client(url)
        try:
            for i in range(k, n, CLIENTS):
                t0 = time.perf_counter()
                inference_id = c.request(model_id, tiny_input(i))
                elapsed = time.perf_counter() - t0
                with lock:
                    ids[inference_id] = i
                    latencies.append(elapsed)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return ids, latencies


def _statuses(client: Client, model_id: str, latencies: list[float]) -> dict[str, dict[str, Any]]:
    """Every request of the model as the client sees it, read page by page like a client would."""
    seen: dict[str, dict[str, Any]] = {}
    after: str | None = None
    while True:
        params: dict[str, Any] = {"model_id": model_id, "limit": 100}
        if after:
            params["after"] = after
        t0 = time.perf_counter()
        r = client.http.get("/v1/inferences", params=params)
        latencies.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        page = r.json()
        seen.update({item["id"]: item for item in page["items"]})
        after = page["next_after"]
        if not after:
            return seen


def test_hundreds_of_concurrent_requests_with_two_workers_all_finish_exactly_once(
    private_pg_url: str, tiny_batch: Compiled, tmp_path: Path
) -> None:
    env = service_env(private_pg_url, tmp_path / "home", ZKINFER_LEASE_TTL_S="30")
    model_id = f"tiny-load-{uuid.uuid4().hex[:8]}"
    register(private_pg_url, model_id, tiny_batch.bundle.root)
    with (
        queue_process(env, tmp_path / "queue.log"),
        api_process(env, tmp_path / "api.log") as api,
        worker_process(api.url, PROVIDER, tmp_path / "w1", tmp_path / "w1.log") as w1,
        worker_process(api.url, PROVIDER, tmp_path / "w2", tmp_path / "w2.log") as w2,
    ):
        client = Client(api.url)
        started = time.perf_counter()
        inputs, post_latency = _post_all(api.url, model_id, REQUESTS)
        ids = list(inputs)
        posted_s = time.perf_counter() - started
        list_latency: list[float] = []
        get_latency: list[float] = []
        deadline = time.monotonic() + 1800
        while True:
            statuses = _statuses(client, model_id, list_latency)
            t0 = time.perf_counter()
            client.get(ids[0])
            get_latency.append(time.perf_counter() - t0)
            if all(v["status"] in TERMINAL for v in statuses.values()) and len(statuses) >= len(
                ids
            ):
                break
            assert time.monotonic() < deadline, f"not finished: {statuses}"
            time.sleep(1.0)
        total_s = time.perf_counter() - started
        lines = w1.lines + w2.lines

    assert len(ids) == REQUESTS
    assert set(statuses) == set(ids), "a request was lost or one appeared that nobody made"
    assert all(v["status"] == "done" for v in statuses.values()), statuses
    for inference_id, posted in inputs.items():  # each its own slot's outputs
        got = statuses[inference_id]["outputs"][0]
        assert got == pytest.approx(tiny_outputs(posted), abs=0.05), (inference_id, got)
    accepted = count_rows(
        private_pg_url,
        "SELECT count(DISTINCT a.inference_id) FROM attempts a JOIN inferences i"
        " ON i.id = a.inference_id WHERE i.model_id = %s AND a.outcome = 'accepted'",
        model_id,
    )
    accepted_rows = count_rows(
        private_pg_url,
        "SELECT count(*) FROM attempts a JOIN inferences i ON i.id = a.inference_id"
        " WHERE i.model_id = %s AND a.outcome = 'accepted'",
        model_id,
    )
    assert accepted == accepted_rows == REQUESTS
    proofs = count_rows(
        private_pg_url,
        "SELECT count(DISTINCT a.lease_id) FROM attempts a JOIN inferences i"
        " ON i.id = a.inference_id WHERE i.model_id = %s AND a.outcome = 'accepted'",
        model_id,
    )
    prove_s = [float(line["prove_s"]) for line in lines if line.get("prove_s") is not None]
    report = {
        "requests": REQUESTS,
        "batch_size": tiny_batch.bundle.manifest.batch_size,
        "proofs": proofs,
        "clients": CLIENTS,
        "workers": 2,
        "posting_s": round(posted_s, 2),
        "post_rate_per_s": round(REQUESTS / posted_s, 1),
        "all_done_s": round(total_s, 1),
        "proven_per_s": round(REQUESTS / total_s, 2),
        "post_latency": _quantiles(post_latency),
        "get_latency": _quantiles(get_latency),
        "list_page_latency": _quantiles(list_latency),
        "worker_prove_s_median": round(statistics.median(prove_s), 2) if prove_s else None,
        "leases_per_worker": [len(w1.lines), len(w2.lines)],
    }
    print(json.dumps(report))
    out = os.environ.get("ZKINFER_LOAD_REPORT")
    if out:
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
