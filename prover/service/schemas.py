"""Client-facing bodies (the provider side's shapes are in :mod:`prover.protocol`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "InferenceAccepted",
    "InferenceCreate",
    "InferencePage",
    "InferenceView",
    "ModelAccepted",
    "ModelList",
    "ModelView",
    "Readiness",
    "Timings",
    "VerifyBody",
    "VerifyOutcome",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InferenceCreate(_Body):
    model_id: str = Field(min_length=1, max_length=200)
    input: dict[str, Any] = Field(
        description='{"input_data": [[...]]} (one flat list per model input) or {"input": nested}'
    )
    deadline_s: float | None = Field(default=None, gt=0, description="seconds from now")
    webhook_url: str | None = Field(default=None, max_length=2000)


class InferenceAccepted(BaseModel):
    id: str
    status: str


class Timings(BaseModel):
    queued_s: float | None = None
    proving_s: float | None = None
    total_s: float | None = None
    prove_s: float | None = Field(default=None, description="as reported by the provider")


class InferenceView(BaseModel):
    id: str
    model_id: str
    bundle_digest: str
    status: str
    reason: str | None
    attempts: int
    created_at: datetime
    deadline: datetime
    finished_at: datetime | None
    outputs: list[list[float]] | None = None
    proof: dict[str, Any] | None = None
    verified: bool = False
    calldata: str | None = Field(
        default=None, description="verifyProof(bytes,uint256[]) calldata for the model's verifier"
    )
    provider: str | None = None
    slot: int | None = Field(
        default=None, description="the request's slot in the proof (0 unless batched)"
    )
    batch_size: int | None = Field(
        default=None, description="the slots the proof covers: its batch of requests and padding"
    )
    padding: list[int] | None = Field(
        default=None, description="the proof's slots filled with the model's padding input"
    )
    timings: Timings


class InferencePage(BaseModel):
    items: list[InferenceView]
    next_after: str | None = Field(description="pass as ?after= for the next page")


class ModelView(BaseModel):
    id: str
    status: str
    reason: str | None = None
    bundle_digest: str | None = None
    manifest: dict[str, Any] | None = None
    chain_id: int | None = Field(
        default=None, description="the chain the service serves (ZKINFER_CHAIN_ID); null: none"
    )
    verifier_address: str | None = Field(
        default=None,
        description="the model's verifier contract on chain_id, as `zkinfer deploy` recorded it "
        "in the service's data directory; null until the model is deployed there",
    )
    market_address: str | None = Field(
        default=None,
        description="the InferenceMarket on chain_id that the model is registered with by "
        "`zkinfer deploy`; null until then",
    )


class ModelList(BaseModel):
    items: list[ModelView]


class ModelAccepted(BaseModel):
    id: str
    status: str


class VerifyBody(_Body):
    model_id: str = Field(min_length=1, max_length=200)
    proof: dict[str, Any]
    input: dict[str, Any] | None = Field(
        default=None, description="also require the proof to be about this input"
    )


class VerifyOutcome(BaseModel):
    valid: bool
    reason: str
    outputs: list[list[float]] | None


class Readiness(BaseModel):
    status: str
    database: str
    queue: str
