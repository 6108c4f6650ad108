"""Shaping database rows into response bodies."""

from __future__ import annotations

from datetime import datetime

from prover.chain.deployments import Deployments  # not chain.deploy: no web3 in the API
from prover.protocol import InputDocument, Lease, LeaseBatch, LeasedInference, LeasedSlot
from prover.service.models import model_manifest
from prover.service.schemas import InferenceView, ModelView, Timings
from prover.service.store import Claimed, Row
from prover.settings import Settings

__all__ = ["deployments", "inference_view", "lease_body", "model_view"]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def inference_view(row: Row) -> InferenceView:
    done = row["status"] == "done"
    return InferenceView(
        id=row["id"],
        model_id=row["model_id"],
        bundle_digest=row["bundle_digest"],
        status=row["status"],
        reason=row["reason"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        deadline=row["deadline"],
        finished_at=row["finished_at"],
        outputs=row["outputs"] if done else None,
        proof=row["proof"] if done else None,
        verified=done,
        calldata=row["calldata"] if done else None,
        provider=row["provider"] if done else None,
        slot=row["slot"] if done else None,
        batch_size=row["batch_size"] if done else None,
        padding=row["padding"] if done else None,
        timings=Timings(
            queued_s=_seconds(row["created_at"], row["first_claimed_at"]),
            proving_s=_seconds(row["first_claimed_at"], row["finished_at"]),
            total_s=_seconds(row["created_at"], row["finished_at"]),
            prove_s=row["prove_s"] if done else None,
        ),
    )


def _leased(row: Row) -> LeasedInference:
    return LeasedInference(
        id=row["id"],
        model_id=row["model_id"],
        bundle_digest=row["bundle_digest"],
        input=InputDocument(input_data=row["input"]["input_data"]),
    )


def lease_body(claimed: Claimed, ttl_s: float) -> Lease:
    """What the provider is told of a lease it just got (a batch: every request with its slot)."""
    row = claimed.row
    batch = None
    if claimed.batch_size > 1:
        batch = LeaseBatch(
            size=claimed.batch_size,
            slots=[LeasedSlot(slot=s, inference=_leased(r)) for s, r in enumerate(claimed.rows)],
            padding=list(claimed.padding),
        )
    return Lease(
        lease_id=claimed.lease_id,
        token=claimed.token,
        expires_at=row["lease_expires_at"],
        ttl_s=ttl_s,
        attempt=row["attempts"],
        inference=_leased(row),
        batch=batch,
    )


def deployments(settings: Settings) -> Deployments | None:
    """What ``zkinfer deploy`` recorded in the service's data directory for the chain it serves
    (read afresh, so a deployment made while the service runs shows at once)."""
    if settings.chain_id is None:
        return None
    return Deployments(settings.chain_id, settings)


def model_view(row: Row, chain: Deployments | None = None) -> ModelView:
    verifier = market = None
    manifest = row["manifest"]
    if chain is not None and manifest is not None:
        bundle_model_id = model_manifest(
            row
        ).model_id  # a deployment is of the bundle, not the name
        verifier = chain.get("verifiers", bundle_model_id)
        if verifier is not None and chain.get("registrants", bundle_model_id) is not None:
            market = chain.get("market")
    return ModelView(
        id=row["id"],
        status=row["status"],
        reason=row["reason"],
        bundle_digest=row["bundle_digest"],
        manifest=manifest,
        chain_id=None if chain is None else chain.chain_id,
        verifier_address=verifier,
        market_address=market,
    )
