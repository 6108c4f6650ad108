"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from prover.service.deps import StoreDep
from prover.service.metrics import registry_for
from prover.service.problems import ApiProblem
from prover.service.schemas import Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="ready")
async def ready(store: StoreDep) -> Readiness:
    """The database answers and the job queue's tables are there."""
    try:
        await store.ping()
        jobs = await store.queue_jobs()
    except Exception as exc:  # any database failure means not ready
        raise ApiProblem(503, "Not ready", f"database: {type(exc).__name__}") from None
    return Readiness(status="ok", database="ok", queue=f"ok ({sum(jobs.values())} jobs)")


@router.get("/metrics", operation_id="metrics", response_class=Response)
async def metrics(store: StoreDep) -> Response:
    """Prometheus text format: queue depth, proofs by outcome, latencies, active leases."""
    registry = await registry_for(store)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
