"""Shaping database rows into response bodies."""

from __future__ import annotations

from datetime import datetime

from prover.service.schemas import InferenceView, ModelView, Timings
from prover.service.store import Row

__all__ = ["inference_view", "model_view"]


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
        timings=Timings(
            queued_s=_seconds(row["created_at"], row["first_claimed_at"]),
            proving_s=_seconds(row["first_claimed_at"], row["finished_at"]),
            total_s=_seconds(row["created_at"], row["finished_at"]),
            prove_s=row["prove_s"] if done else None,
        ),
    )


def model_view(row: Row) -> ModelView:
    return ModelView(
        id=row["id"],
        status=row["status"],
        reason=row["reason"],
        bundle_digest=row["bundle_digest"],
        manifest=row["manifest"],
    )
