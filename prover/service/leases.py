"""The life of an inference request as a pure state machine: no FastAPI, no database, no clock.

The store loads a request's row (locked), applies one transition here and writes the result back,
so every rule about leases, attempts, deadlines and quarantine lives in this file and is tested
without a server. Time is always passed in.

::

    queued ──claim──▶ proving ──submit──▶ verifying ──accept──▶ done
      ▲                 │  │                  │
      └── lease expiry ─┘  └─ failure ─┐      └── reject ──▶ queued (or failed at max attempts)
          (or failed at max attempts)   └──▶ queued if retryable and attempts remain, else failed
    queued / proving / verifying ──cancel──▶ canceled
    queued / proving ──deadline──▶ expired
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "TERMINAL",
    "IllegalTransition",
    "Lease",
    "LeaseLost",
    "Request",
    "RequestGone",
    "Status",
    "accept",
    "cancel",
    "claim",
    "close_for_submission",
    "expire",
    "fail",
    "is_quarantined",
    "reap",
    "reject",
    "renew",
]


class Status(StrEnum):
    QUEUED = "queued"
    PROVING = "proving"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"


TERMINAL = frozenset({Status.DONE, Status.FAILED, Status.CANCELED, Status.EXPIRED})


class IllegalTransition(Exception):
    """The transition does not apply to a request in this state."""


class LeaseLost(IllegalTransition):
    """The caller's lease is not the request's current, live lease (HTTP 409)."""


class RequestGone(IllegalTransition):
    """The request was canceled or expired: the lease holder must stop (HTTP 410)."""


@dataclass(frozen=True)
class Lease:
    """One provider's exclusive right to prove a request until ``expires_at``."""

    lease_id: str
    token_hash: str
    provider: str
    expires_at: datetime


@dataclass(frozen=True)
class Request:
    """What the state machine needs of a request."""

    status: Status
    attempts: int
    deadline: datetime
    lease: Lease | None = None
    reason: str | None = None


def claim(req: Request, lease: Lease, *, now: datetime, max_attempts: int) -> Request:
    """A provider takes a queued request; each claim is one attempt."""
    if req.status is not Status.QUEUED:
        raise IllegalTransition(f"cannot lease a request that is {req.status}")
    if now >= req.deadline:
        raise RequestGone("the request is past its deadline")
    if req.attempts >= max_attempts:
        raise IllegalTransition("the request has used all its attempts")
    return replace(req, status=Status.PROVING, attempts=req.attempts + 1, lease=lease, reason=None)


def _held(req: Request, lease_id: str, token_hash: str, now: datetime) -> Lease:
    """The caller's lease if it is the live one; otherwise why not (410 before 409)."""
    if req.status in (Status.CANCELED, Status.EXPIRED):
        raise RequestGone(f"the request was {req.status}")
    lease = req.lease
    if (
        req.status is not Status.PROVING
        or lease is None
        or lease.lease_id != lease_id
        or lease.token_hash != token_hash
    ):
        raise LeaseLost("this lease is no longer the request's current lease")
    if now >= lease.expires_at:
        raise LeaseLost("the lease expired")
    if now >= req.deadline:
        raise RequestGone("the request is past its deadline")
    return lease


def renew(
    req: Request, lease_id: str, token_hash: str, *, now: datetime, ttl: timedelta
) -> Request:
    """Extend a live lease by ``ttl`` from now (never past the request's deadline)."""
    lease = _held(req, lease_id, token_hash, now)
    expires = min(now + ttl, req.deadline)
    return replace(req, lease=replace(lease, expires_at=expires))


def close_for_submission(req: Request, lease_id: str, token_hash: str, *, now: datetime) -> Request:
    """A proof arrived on a live lease: the lease closes and the service verifies the proof."""
    _held(req, lease_id, token_hash, now)
    return replace(req, status=Status.VERIFYING)


def accept(req: Request) -> Request:
    """The service's own verification accepted the proof: the request is done, once."""
    if req.status is not Status.VERIFYING:
        raise IllegalTransition(f"cannot accept a proof for a request that is {req.status}")
    return replace(req, status=Status.DONE, reason=None)


def _requeue_or_fail(req: Request, reason: str, max_attempts: int) -> Request:
    if req.attempts >= max_attempts:
        return replace(
            req,
            status=Status.FAILED,
            lease=None,
            reason=f"{reason} (after {req.attempts} attempt(s))",
        )
    return replace(req, status=Status.QUEUED, lease=None, reason=reason)


def reject(req: Request, reason: str, *, max_attempts: int) -> Request:
    """The proof was invalid: back to the queue for another provider, or failed at the cap."""
    if req.status is not Status.VERIFYING:
        raise IllegalTransition(f"cannot reject a proof for a request that is {req.status}")
    return _requeue_or_fail(req, f"proof rejected: {reason}", max_attempts)


def fail(
    req: Request,
    lease_id: str,
    token_hash: str,
    reason: str,
    *,
    retryable: bool,
    now: datetime,
    max_attempts: int,
) -> Request:
    """The lease holder could not prove the request."""
    _held(req, lease_id, token_hash, now)
    if not retryable:
        return replace(req, status=Status.FAILED, lease=None, reason=reason)
    return _requeue_or_fail(req, reason, max_attempts)


def cancel(req: Request) -> Request:
    """The client no longer wants the result; a terminal request cannot be canceled."""
    if req.status in TERMINAL:
        raise IllegalTransition(f"the request is already {req.status}")
    return replace(req, status=Status.CANCELED, lease=None, reason="canceled by the client")


def expire(req: Request, *, now: datetime) -> Request:
    """Past its deadline before a proof arrived: the request expires."""
    if req.status not in (Status.QUEUED, Status.PROVING) or now < req.deadline:
        raise IllegalTransition("the request is not past its deadline while waiting for a proof")
    return replace(req, status=Status.EXPIRED, lease=None, reason="deadline passed")


def reap(req: Request, *, now: datetime, max_attempts: int) -> Request | None:
    """What the reaper does to one request at ``now``: the new state, or None to leave it."""
    if req.status in (Status.QUEUED, Status.PROVING) and now >= req.deadline:
        return expire(req, now=now)
    if req.status is Status.PROVING and req.lease is not None and now >= req.lease.expires_at:
        return _requeue_or_fail(req, "lease expired without a proof", max_attempts)
    return None


def is_quarantined(rejected_proofs: int, threshold: int) -> bool:
    """A provider whose proofs were rejected ``threshold`` times may no longer lease work."""
    return rejected_proofs >= threshold
