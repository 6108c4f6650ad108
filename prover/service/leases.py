"""The life of an inference request as a pure state machine: no FastAPI, no database, no clock.

The store loads a request's row (locked), applies one transition here and writes the result back,
so every rule about leases, attempts, deadlines and quarantine lives in this file and is tested
without a server. Time is always passed in.

::

    queued ──claim──▶ proving ──submit──▶ verifying ──accept──▶ done
      ▲                 │  │                  │
      └── lease expiry ─┘  └─ failure ─┐      └── reject ──▶ queued (or failed at max attempts)
          (or failed at max attempts)   └──▶ queued if attempts remain, else failed
    queued / proving / verifying ──cancel──▶ canceled
    (a batch lease: every transition above applies to each request of the batch at once; a
    request canceled or past its deadline drops out of the batch, see :func:`held`)
    queued / proving ──deadline──▶ expired
    verifying ──deadline + VERIFY_GRACE without a verdict──▶ failed (the service's fault)

A provider's failure report is its unverified word: it never fails a request by itself, and only
a provider's first failure report or expired lease on a request uses up one of the request's
attempts (``counts``), so one provider cannot exhaust them; the store keeps a provider that
reported a non-retryable failure away from that request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "TERMINAL",
    "VERIFY_GRACE",
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
    "held",
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


# How long past its deadline a request may wait for the service's verdict before it fails.
VERIFY_GRACE = timedelta(seconds=30)


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


def held(reqs: Sequence[Request], lease_id: str, token_hash: str, *, now: datetime) -> list[bool]:
    """Which requests of one lease (a batch lease covers several) the caller still holds.

    A request of the batch that was canceled or passed its own deadline drops out (False); the
    others go on. Raises :class:`LeaseLost` when the lease is lost for any request (it is lost
    for all: they share one expiry), :class:`RequestGone` when no request is left."""
    kept: list[bool] = []
    gone: RequestGone | None = None
    for req in reqs:
        try:
            _held(req, lease_id, token_hash, now)
            kept.append(True)
            continue
        except RequestGone as exc:
            gone = exc
        except LeaseLost:
            mine = req.lease is not None and req.lease.lease_id == lease_id
            if not (req.status is Status.PROVING and mine and now >= req.deadline):
                raise
            gone = RequestGone("the request is past its deadline")
        kept.append(False)
    if gone is not None and not any(kept):
        raise gone
    return kept


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
    now: datetime,
    max_attempts: int,
    counts: bool = True,
) -> Request:
    """The lease holder could not prove the request: back to the queue for another provider.

    ``counts`` is False for a provider's repeated failure on the same request: its attempt is
    given back, so one provider's reports cannot use up the request's attempts."""
    _held(req, lease_id, token_hash, now)
    if not counts:
        req = replace(req, attempts=max(req.attempts - 1, 0))
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


def reap(req: Request, *, now: datetime, max_attempts: int, counts: bool = True) -> Request | None:
    """What the reaper does to one request at ``now``: the new state, or None to leave it.

    ``counts`` as in :func:`fail`, for the expired lease's provider."""
    if req.status in (Status.QUEUED, Status.PROVING) and now >= req.deadline:
        return expire(req, now=now)
    if req.status is Status.PROVING and req.lease is not None and now >= req.lease.expires_at:
        if not counts:
            req = replace(req, attempts=max(req.attempts - 1, 0))
        return _requeue_or_fail(req, "lease expired without a proof", max_attempts)
    if req.status is Status.VERIFYING and now >= req.deadline + VERIFY_GRACE:
        return replace(
            req, status=Status.FAILED, lease=None, reason="the service could not verify the proof"
        )
    return None


def is_quarantined(rejected_proofs: int, threshold: int) -> bool:
    """A provider whose proofs were rejected ``threshold`` times may no longer lease work."""
    return rejected_proofs >= threshold
