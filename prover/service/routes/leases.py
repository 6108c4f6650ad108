"""The lease protocol of :mod:`prover.protocol` for untrusted provers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Response

from prover.protocol import (
    ClaimRequest,
    FailureReport,
    Lease,
    LeaseClosed,
    LeaseRenewed,
    LeaseToken,
    ProofSubmission,
    SubmissionVerdict,
)
from prover.service.deps import (
    ProviderDep,
    QueueDep,
    SettingsDep,
    StoreDep,
    refuse_quarantined,
)
from prover.service.tasks import reap_once
from prover.service.views import lease_body

router = APIRouter(prefix="/v1/leases", tags=["leases"])

#: How often a long-polling claim looks at the queue again.
POLL_S = 0.25


@router.post("", operation_id="claimLease", responses={204: {"description": "nothing to prove"}})
async def claim_lease(
    body: ClaimRequest,
    caller: ProviderDep,
    store: StoreDep,
    queue: QueueDep,
    settings: SettingsDep,
    response: Response,
) -> Lease | None:
    """Lease the oldest queued request of the named models, waiting up to ``wait_s``."""
    await refuse_quarantined(store, settings, caller.id)
    await reap_once(store, settings, queue)
    ttl = timedelta(seconds=settings.lease_ttl_s)
    give_up = time.monotonic() + body.wait_s
    while True:
        claimed = await store.claim(
            caller.id,
            worker=body.worker,
            models=body.models,
            ttl=ttl,
            now=datetime.now(UTC),
            max_attempts=settings.max_attempts,
            batch_wait=timedelta(seconds=settings.batch_wait_s),
        )
        if claimed is not None or time.monotonic() >= give_up:
            break
        await asyncio.sleep(POLL_S)
    if claimed is None:
        response.status_code = 204
        return None
    return lease_body(claimed, settings.lease_ttl_s)


@router.post("/{lease_id}/renew", operation_id="renewLease")
async def renew_lease(
    lease_id: str, body: LeaseToken, caller: ProviderDep, store: StoreDep, settings: SettingsDep
) -> LeaseRenewed:
    """Extend a live lease (409 lost, 410 canceled or expired: stop proving; 403 quarantined)."""
    await refuse_quarantined(store, settings, caller.id)
    expires = await store.renew(
        caller.id,
        lease_id,
        body.token,
        ttl=timedelta(seconds=settings.lease_ttl_s),
        now=datetime.now(UTC),
    )
    return LeaseRenewed(expires_at=expires)


@router.post(
    "/{lease_id}/proof",
    operation_id="submitProof",
    responses={202: {"model": SubmissionVerdict, "description": "verdict pending"}},
)
async def submit_proof(
    lease_id: str,
    body: ProofSubmission,
    caller: ProviderDep,
    store: StoreDep,
    queue: QueueDep,
    settings: SettingsDep,
    response: Response,
) -> SubmissionVerdict:
    """Hand in a proof; the service verifies it in a separate process before accepting it."""
    await refuse_quarantined(store, settings, caller.id)
    await store.submit(
        caller.id,
        lease_id,
        body.token,
        proof=body.proof,
        prove_s=body.prove_s,
        now=datetime.now(UTC),
    )
    await queue.verify(lease_id)
    give_up = time.monotonic() + settings.submit_wait_s
    outcome, reason = await store.verdict(lease_id)
    while outcome == "submitted" and time.monotonic() < give_up:
        await asyncio.sleep(POLL_S)
        outcome, reason = await store.verdict(lease_id)
    if outcome == "submitted":
        response.status_code = 202
        return SubmissionVerdict(accepted=None)
    return SubmissionVerdict(accepted=outcome == "accepted", reason=reason)


@router.post("/{lease_id}/failure", operation_id="reportFailure")
async def report_failure(
    lease_id: str,
    body: FailureReport,
    caller: ProviderDep,
    store: StoreDep,
    queue: QueueDep,
    settings: SettingsDep,
) -> LeaseClosed:
    """The provider cannot prove the request: back to the queue for another provider (not this
    one again if it says the failure is not retryable), or failed when its attempts are used."""
    reason = f"provider failure: {body.reason}" + (f" ({body.detail})" if body.detail else "")
    rows = await store.fail(
        caller.id,
        lease_id,
        body.token,
        reason=reason,
        retryable=body.retryable,
        now=datetime.now(UTC),
        max_attempts=settings.max_attempts,
    )
    for row in rows:
        await queue.terminal(row)
    return LeaseClosed(status=rows[0]["status"])
