"""Client requests: create (idempotent), read, list, cancel."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from prover.core.hashing import sha256_text
from prover.service.deps import ClientDep, QueueDep, SettingsDep, StoreDep
from prover.service.leases import Status
from prover.service.models import check_input, model_manifest, ready_model
from prover.service.problems import QUEUE_FULL_RESPONSE
from prover.service.schemas import InferenceAccepted, InferenceCreate, InferencePage, InferenceView
from prover.service.views import inference_view
from prover.service.webhooks import check_webhook_url

router = APIRouter(prefix="/v1/inferences", tags=["inferences"])


@router.post("", status_code=202, operation_id="createInference", responses=QUEUE_FULL_RESPONSE)
async def create_inference(
    body: InferenceCreate,
    response: Response,
    caller: ClientDep,
    store: StoreDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> InferenceAccepted:
    """Queue one proven inference; the same ``Idempotency-Key`` returns the first request; 429
    when the caller already has ``ZKINFER_MAX_QUEUED_PER_CLIENT`` open requests (queued, proving
    or verifying, deadline not passed), or too many creates at once."""
    model = await ready_model(store, body.model_id)
    values = check_input(model_manifest(model), body.input)
    if body.webhook_url is not None:
        await asyncio.to_thread(check_webhook_url, body.webhook_url, allow_private=settings.dev)
    deadline_s = min(body.deadline_s or settings.default_deadline_s, settings.max_deadline_s)
    digest = sha256_text(json.dumps([body.model_id, values, body.deadline_s, body.webhook_url]))
    row, _ = await store.create_inference(
        owner=caller.id,
        model_id=model["id"],
        bundle_digest=model["bundle_digest"],
        values=values,
        deadline=datetime.now(UTC) + timedelta(seconds=deadline_s),
        webhook_url=body.webhook_url,
        idempotency_key=idempotency_key,
        request_hash=digest,
        max_queued=settings.max_queued_per_client,
        max_attempts=settings.max_attempts,
    )
    response.headers["Location"] = f"/v1/inferences/{row['id']}"
    return InferenceAccepted(id=row["id"], status=row["status"])


@router.get("/{inference_id}", operation_id="getInference")
async def get_inference(inference_id: str, caller: ClientDep, store: StoreDep) -> InferenceView:
    """A request's status; when done, its outputs, proof, verifier calldata and provider."""
    return inference_view(await store.get_inference(inference_id, owner=caller.id))


@router.get("", operation_id="listInferences")
async def list_inferences(
    caller: ClientDep,
    store: StoreDep,
    settings: SettingsDep,
    model_id: str | None = None,
    status: Status | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1)] = 50,
) -> InferencePage:
    """The caller's requests, oldest first, ``limit`` at a time (pass ``next_after`` on)."""
    limit = min(limit, settings.page_size_max)
    rows = await store.list_inferences(
        caller.id,
        model_id=model_id,
        status=None if status is None else status.value,
        limit=limit,
        after=after,
    )
    next_after = rows[-1]["id"] if len(rows) == limit else None
    return InferencePage(items=[inference_view(r) for r in rows], next_after=next_after)


@router.post("/{inference_id}/cancel", operation_id="cancelInference")
async def cancel_inference(
    inference_id: str, caller: ClientDep, store: StoreDep, queue: QueueDep
) -> InferenceView:
    """Cancel a request that is not finished; its prover stops at its next renew (410)."""
    row = await store.cancel(inference_id, caller.id)
    await queue.terminal(row)
    return inference_view(row)
