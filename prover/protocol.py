"""The wire format between the service and untrusted provers (``zkinfer worker --api URL``).

A leaf module: pydantic models only, no I/O. The service (``prover.service``) serves these shapes
and the HTTP worker (``prover.worker``) sends and reads them, so neither imports the other.

The protocol, all under ``/v1`` with ``Authorization: Bearer <provider key>``:

``POST /v1/leases`` (:class:`ClaimRequest`) long-polls for work for at most ``wait_s`` seconds:
    200 :class:`Lease`, or 204 when nothing is queued for this provider. For a model compiled
    with ``--batch N`` the lease carries a :class:`LeaseBatch` (up to N requests of one client,
    each with its slot); everything below applies to the whole batch: one token, one renew, one
    proof of the whole batch, one failure report.
``POST /v1/leases/{lease_id}/renew`` (:class:`LeaseToken`): 200 :class:`LeaseRenewed`;
    409 the lease was lost (expired and handed to another provider), 410 the request was
    canceled or expired: the worker stops proving and drops the lease.
``POST /v1/leases/{lease_id}/proof`` (:class:`ProofSubmission`): 200 :class:`SubmissionVerdict`
    once the service's own verification (in a separate process, never in the API process) has
    decided: ``accepted`` false with a ``reason`` when it rejected the proof (the request goes
    back to the queue and the rejection counts against the provider); 202 with ``accepted``
    null when the verdict is still pending (the lease is closed either way: the worker moves on);
    409 / 410 as for renew.
``POST /v1/leases/{lease_id}/failure`` (:class:`FailureReport`): 200 :class:`LeaseClosed`.
``GET /v1/bundles/{model_id}`` :class:`BundleListing`; ``GET /v1/bundles/{model_id}/files/{name}``
    the file's bytes, honouring ``Range`` (proving keys are hundreds of MB); the worker checks
    every file against ``sha256`` before use, then loads the bundle with the core's digest checks.

Errors are RFC 9457 problem documents (:class:`Problem`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BundleFile",
    "BundleListing",
    "ClaimRequest",
    "FailureReason",
    "FailureReport",
    "InputDocument",
    "Lease",
    "LeaseBatch",
    "LeaseClosed",
    "LeaseRenewed",
    "LeaseToken",
    "LeasedInference",
    "LeasedSlot",
    "Problem",
    "ProofSubmission",
    "SubmissionVerdict",
]

MAX_CLAIM_WAIT_S = 30.0


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputDocument(_Wire):
    """An inference input in ezkl's format: one flat list per model input."""

    input_data: list[list[float]]


class ClaimRequest(_Wire):
    """A provider asks for work. ``models`` lists the bundles it has cached (preferred first);
    an empty list means any model."""

    models: list[str] = Field(default_factory=list, max_length=256)
    wait_s: float = Field(default=10.0, ge=0.0, le=MAX_CLAIM_WAIT_S)
    worker: str = Field(default="", max_length=200, description="free-form worker name for logs")


class LeasedInference(_Wire):
    """The request a lease covers: what to prove."""

    id: str
    model_id: str
    bundle_digest: str
    input: InputDocument


class LeasedSlot(_Wire):
    """One request of a batch lease and the slot its input fills (``input`` is ONE slot's)."""

    slot: int = Field(ge=0)
    inference: LeasedInference


class LeaseBatch(_Wire):
    """The requests of a lease on a model compiled with ``--batch N`` (``size`` = N slots), one
    per slot from slot 0; every slot in ``padding`` is proven with the bundle's fixed padding
    input. One proof of the whole batch answers them all."""

    size: int = Field(ge=1)
    slots: list[LeasedSlot]
    padding: list[int]


class Lease(_Wire):
    """Exclusive right to prove one request (or, with ``batch``, a batch of requests proven
    together) until ``expires_at``, renewable with ``token``. ``inference`` is the request in
    slot 0; ``batch`` is null for a model whose proof serves one request."""

    lease_id: str
    token: str
    expires_at: datetime
    ttl_s: float
    attempt: int
    inference: LeasedInference
    batch: LeaseBatch | None = None


class LeaseToken(_Wire):
    """Proof that the caller holds the lease."""

    token: str


class LeaseRenewed(_Wire):
    expires_at: datetime


class ProofSubmission(_Wire):
    """A proof for the leased request. Only ``proof`` is trusted after the service verifies it;
    the worker's timings are informational."""

    token: str
    proof: dict[str, Any]
    prove_s: float | None = Field(default=None, ge=0.0)


class SubmissionVerdict(_Wire):
    """``accepted`` is None while the service is still verifying (HTTP 202)."""

    accepted: bool | None
    reason: str | None = None


class FailureReason(StrEnum):
    OUT_OF_MEMORY = "out_of_memory"
    UNSUPPORTED = "unsupported"
    INTERNAL = "internal"


class FailureReport(_Wire):
    """The provider could not prove the request."""

    token: str
    reason: FailureReason
    retryable: bool
    detail: str = Field(default="", max_length=2000)


class LeaseClosed(_Wire):
    status: str


class BundleFile(_Wire):
    name: str
    sha256: str
    size: int
    url: str


class BundleListing(_Wire):
    """Everything a prover downloads to prove a model, content-addressed."""

    model_id: str
    bundle_digest: str
    files: list[BundleFile]


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
