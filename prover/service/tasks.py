"""Trusted background work on procrastinate, over the service's own PostgreSQL.

Verifying a submitted proof, reaping expired leases and deadlines, delivering webhooks. Each task
is a thin wrapper around a plain ``async`` function that takes the store and the settings, so the
logic is tested without a queue worker. ``zkinfer serve`` runs the queue worker as a separate
process (``zkinfer serve --queue-worker``); the API only defers jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from prover.core.slots import batch_values
from prover.errors import ZkinferError
from prover.service.calldata import canonical_proof, proof_digest, verifier_calldata
from prover.service.compiler import CompileFailed, CompileJob, compile_in_subprocess
from prover.service.models import model_manifest, register_bundle
from prover.service.store import Row, Store, UnknownId
from prover.service.verifier import Verifier, VerifierUnavailable
from prover.service.webhooks import WebhookUrlError, event_body, pinned_target, webhook_headers
from prover.settings import Settings

__all__ = ["Queue", "make_queue", "reap_once", "run_verification"]

log = logging.getLogger("zkinfer.service")

NAMESPACE = "zkinfer"
VERIFY = "verify_submission"
REAP = "reap"
WEBHOOK = "deliver_webhook"
COMPILE = "compile_model"


def _deps(context: procrastinate.JobContext) -> tuple[Store, Settings]:
    return context.additional_context["store"], context.additional_context["settings"]


def _verifier(context: procrastinate.JobContext) -> Verifier | None:
    verifier: Verifier | None = context.additional_context.get("verifier")
    return verifier


async def run_verification(
    store: Store, settings: Settings, lease_id: str, verifier: Verifier | None = None
) -> list[Row]:
    """Verify one submitted proof against the stored input and the model's own bundle.

    A batch proof is verified once, against the whole batch's input built from every request's
    stored input in its slot and the bundle's padding input in every other slot; each request
    then gets its own slot's outputs. ``verifier`` is the queue worker's (long-lived children);
    without one, a verifier child is started for this proof alone. Returns the requests after
    the verdict, none when the verdict was already recorded (a retried job). Raises
    :class:`VerifierUnavailable` when no verdict could be reached: that is the service's
    failure, so the job is retried and nothing counts against the provider.
    """
    sub = await store.submission(lease_id)
    if not sub.pending:
        return []
    model = await store.get_model(sub.model_id)
    manifest = model_manifest(model)
    batched = sub.batch_size > 1
    if batched:
        # every request the lease covered is in the proof, a request canceled since included
        by_slot = {r.slot: r.values for r in sub.covered}
        values = batch_values(manifest, [by_slot.get(s) for s in range(sub.batch_size)])
    else:
        values = sub.requests[0].values
    with contextlib.ExitStack() as own:
        if verifier is None:
            verifier = own.enter_context(Verifier(memory_bytes=settings.verify_memory_bytes))
        verdict = await verifier.verify(
            Path(sub.bundle_dir),
            sub.proof,
            bundle_digest=sub.bundle_digest,
            values=values,
            slots=[r.slot for r in sub.requests] if batched else None,
            timeout_s=settings.verify_timeout_s,
        )
    outputs: dict[int, list[list[float]] | None] | None = None
    if verdict.valid:
        per_slot = verdict.slot_outputs if batched else [verdict.outputs]
        if per_slot is None or len(per_slot) != len(sub.requests):
            raise VerifierUnavailable("the verifier did not decode every slot's outputs")
        outputs = {r.slot: o for r, o in zip(sub.requests, per_slot, strict=True)}
    rows = await store.decide(
        lease_id,
        valid=verdict.valid,
        reason=verdict.reason,
        outputs=outputs,
        proof=canonical_proof(sub.proof, manifest) if verdict.valid else None,
        calldata=verifier_calldata(sub.proof, manifest) if verdict.valid else None,
        proof_sha256=proof_digest(sub.proof, manifest) if verdict.valid else None,
        max_attempts=settings.max_attempts,
    )
    log.info(
        "lease %s (%d request(s)): %s %s",
        lease_id,
        len(sub.requests),
        "accepted" if verdict.valid else "rejected",
        verdict.reason,
    )
    return rows


async def reap_once(store: Store, settings: Settings, queue: Queue | None = None) -> list[Row]:
    """One reaper pass; re-defers verifications whose job was lost (an API crash after commit)."""
    now = datetime.now(UTC)
    changed = await store.reap(now=now, max_attempts=settings.max_attempts)
    if queue is not None:
        for row in changed:
            await queue.terminal(row)
        stale = now - timedelta(seconds=2 * settings.verify_timeout_s)
        for lease_id in await store.pending_submissions(stale):
            await queue.verify(lease_id)
    return changed


async def verify_submission(context: procrastinate.JobContext, lease_id: str) -> None:
    store, settings = _deps(context)
    try:
        rows = await run_verification(store, settings, lease_id, _verifier(context))
    except UnknownId:
        log.warning("lease %s vanished before verification", lease_id)
        return
    for row in rows:
        await Queue(context.app).terminal(row)


async def reap(context: procrastinate.JobContext, timestamp: int) -> None:
    store, settings = _deps(context)
    await reap_once(store, settings, Queue(context.app))


async def deliver_webhook(
    context: procrastinate.JobContext, inference_id: str, status: str
) -> None:
    """POST the signed event; any answer but 2xx raises, and procrastinate retries with backoff."""
    store, settings = _deps(context)
    row = await store.get_inference(inference_id)
    if not row["webhook_url"] or settings.webhook_secret is None:
        return
    row = {**row, "status": status}
    body = event_body(row)
    headers = webhook_headers(
        settings.webhook_secret.get_secret_value(), f"msg_{inference_id}_{status}", body
    )
    try:
        url, host, tls_name = await asyncio.to_thread(
            pinned_target, row["webhook_url"], allow_private=settings.dev
        )
    except WebhookUrlError as exc:
        log.warning("webhook for %s not delivered: %s", inference_id, exc)
        return
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
        response = await client.post(
            url, content=body, headers={**headers, **host}, extensions={"sni_hostname": tls_name}
        )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"webhook for {inference_id} answered {response.status_code}")


async def run_compile(store: Store, settings: Settings, model_id: str, job: CompileJob) -> Row:
    """Compile a model in a limited child process; the model ends ``ready`` or ``failed``."""
    try:
        await compile_in_subprocess(
            job, memory_bytes=settings.compile_memory_bytes, timeout_s=settings.compile_timeout_s
        )
        return await register_bundle(store, model_id, job.out)
    except (CompileFailed, ZkinferError) as exc:
        log.warning("model %s failed to compile: %s", model_id, exc)
        return await store.put_model(model_id, status="failed", reason=str(exc))
    except asyncio.CancelledError:  # the queue worker is shutting down: say so, don't hang
        await asyncio.shield(
            store.put_model(
                model_id,
                status="failed",
                reason="compiling was interrupted by a worker shutdown; upload the model again",
            )
        )
        raise


async def compile_model(
    context: procrastinate.JobContext,
    model_id: str,
    onnx: str,
    sample: str,
    calibration: str | None,
    out: str,
    input_visibility: str,
    output_visibility: str,
    dev_srs: bool,
) -> None:
    store, settings = _deps(context)
    job = CompileJob(
        Path(onnx),
        Path(sample),
        None if calibration is None else Path(calibration),
        Path(out),
        input_visibility,
        output_visibility,
        dev_srs,
    )
    await run_compile(store, settings, model_id, job)


class Queue:
    """What the API and the tasks defer: a thin typed face over the procrastinate app."""

    def __init__(self, app: procrastinate.App) -> None:
        self.app = app

    async def verify(self, lease_id: str) -> None:
        """Verify a submitted proof (once: a second defer for the same lease is dropped)."""
        with contextlib.suppress(AlreadyEnqueued):
            await self.app.configure_task(
                f"{NAMESPACE}:{VERIFY}", queueing_lock=f"verify:{lease_id}", allow_unknown=False
            ).defer_async(lease_id=lease_id)

    async def compile(self, model_id: str, job: CompileJob) -> None:
        """Compile a model in the background (one job per model at a time)."""
        fields = {
            "onnx": str(job.onnx),
            "sample": str(job.sample),
            "calibration": None if job.calibration is None else str(job.calibration),
            "out": str(job.out),
            "input_visibility": job.input_visibility,
            "output_visibility": job.output_visibility,
            "dev_srs": job.dev_srs,
        }
        with contextlib.suppress(AlreadyEnqueued):
            await self.app.configure_task(
                f"{NAMESPACE}:{COMPILE}", queueing_lock=f"compile:{model_id}", allow_unknown=False
            ).defer_async(model_id=model_id, **fields)

    async def terminal(self, row: Row) -> None:
        """A request reached a terminal state: tell its webhook, if it has one."""
        if row.get("webhook_url") and row["status"] in ("done", "failed", "canceled", "expired"):
            await self.app.configure_task(
                f"{NAMESPACE}:{WEBHOOK}", allow_unknown=False
            ).defer_async(inference_id=row["id"], status=row["status"])


def make_queue(conninfo: str) -> procrastinate.App:
    """The procrastinate app over ``conninfo`` with the service's tasks."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    # registered per app (not through a shared Blueprint, whose tasks bind to the last app)
    app.task(
        name=f"{NAMESPACE}:{VERIFY}",
        pass_context=True,
        retry=procrastinate.RetryStrategy(
            max_attempts=5, exponential_wait=2, retry_exceptions=[VerifierUnavailable]
        ),
    )(verify_submission)
    app.periodic(cron="* * * * *", periodic_id="reaper")(
        app.task(name=f"{NAMESPACE}:{REAP}", pass_context=True, queueing_lock=REAP)(reap)
    )
    app.task(
        name=f"{NAMESPACE}:{WEBHOOK}",
        pass_context=True,
        retry=procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2),
    )(deliver_webhook)
    app.task(name=f"{NAMESPACE}:{COMPILE}", pass_context=True, queue="compile")(compile_model)
    return app


def worker_context(
    store: Store, settings: Settings, verifier: Verifier | None = None
) -> dict[str, Any]:
    """The ``additional_context`` the queue worker passes to every task (with the worker's own
    :class:`Verifier`, whose children serve every verification of the process)."""
    return {"store": store, "settings": settings, "verifier": verifier}
