"""The request state machine on its own: every transition, every refusal, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prover.service import leases as lm
from prover.service.leases import IllegalTransition, LeaseLost, RequestGone, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=60)
DEADLINE = T0 + timedelta(hours=1)


def lease(n: int = 1, at: datetime = T0) -> lm.Lease:
    return lm.Lease(f"lease{n}", f"hash{n}", f"provider{n}", at + TTL)


def queued(attempts: int = 0) -> lm.Request:
    return lm.Request(Status.QUEUED, attempts, DEADLINE)


def proving(n: int = 1, attempts: int = 1) -> lm.Request:
    return lm.Request(Status.PROVING, attempts, DEADLINE, lease(n))


def test_claim_leases_a_queued_request_and_counts_an_attempt() -> None:
    got = lm.claim(queued(), lease(), now=T0, max_attempts=3)
    assert got.status is Status.PROVING and got.attempts == 1 and got.lease == lease()


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.QUEUED])
def test_claim_refuses_anything_but_queued(status: Status) -> None:
    with pytest.raises(IllegalTransition):
        lm.claim(lm.Request(status, 0, DEADLINE), lease(), now=T0, max_attempts=3)


def test_claim_refuses_past_deadline_and_at_attempt_cap() -> None:
    with pytest.raises(RequestGone):
        lm.claim(queued(), lease(), now=DEADLINE, max_attempts=3)
    with pytest.raises(IllegalTransition):
        lm.claim(queued(attempts=3), lease(), now=T0, max_attempts=3)


def test_renew_extends_from_now_but_never_past_the_deadline() -> None:
    later = T0 + timedelta(seconds=30)
    assert lm.renew(proving(), "lease1", "hash1", now=later, ttl=TTL).lease.expires_at == (  # type: ignore[union-attr]
        later + TTL
    )
    near = DEADLINE - timedelta(seconds=5)
    req = lm.Request(Status.PROVING, 1, DEADLINE, lm.Lease("lease1", "hash1", "p", DEADLINE))
    assert lm.renew(req, "lease1", "hash1", now=near, ttl=TTL).lease.expires_at == DEADLINE  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("lease_id", "token", "now"),
    [
        ("lease2", "hash1", T0),  # another lease
        ("lease1", "hash2", T0),  # stale or forged token
        ("lease1", "hash1", T0 + TTL),  # the lease ran out
    ],
)
def test_renew_and_submit_refuse_a_lost_lease(lease_id: str, token: str, now: datetime) -> None:
    with pytest.raises(LeaseLost):
        lm.renew(proving(), lease_id, token, now=now, ttl=TTL)
    with pytest.raises(LeaseLost):
        lm.close_for_submission(proving(), lease_id, token, now=now)


@pytest.mark.parametrize("status", [Status.CANCELED, Status.EXPIRED])
def test_renew_says_gone_for_canceled_or_expired_requests(status: Status) -> None:
    with pytest.raises(RequestGone):
        lm.renew(lm.Request(status, 1, DEADLINE), "lease1", "hash1", now=T0, ttl=TTL)


@pytest.mark.parametrize("status", [Status.QUEUED, Status.VERIFYING, Status.DONE, Status.FAILED])
def test_lease_operations_on_a_request_not_proving_are_lost(status: Status) -> None:
    req = lm.Request(status, 1, DEADLINE, lease())
    with pytest.raises(LeaseLost):
        lm.close_for_submission(req, "lease1", "hash1", now=T0)


def test_submission_then_accept_is_done_exactly_once() -> None:
    verifying = lm.close_for_submission(proving(), "lease1", "hash1", now=T0)
    assert verifying.status is Status.VERIFYING
    done = lm.accept(verifying)
    assert done.status is Status.DONE
    with pytest.raises(IllegalTransition):
        lm.accept(done)
    with pytest.raises(LeaseLost):  # a replay on the same lease after acceptance
        lm.close_for_submission(done, "lease1", "hash1", now=T0)


def test_reject_requeues_until_the_attempt_cap_then_fails() -> None:
    verifying = lm.Request(Status.VERIFYING, 1, DEADLINE, lease())
    again = lm.reject(verifying, "bad", max_attempts=2)
    assert again.status is Status.QUEUED and again.lease is None and "bad" in (again.reason or "")
    final = lm.reject(lm.Request(Status.VERIFYING, 2, DEADLINE, lease()), "bad", max_attempts=2)
    assert final.status is Status.FAILED and "2 attempt" in (final.reason or "")
    with pytest.raises(IllegalTransition):
        lm.reject(queued(), "bad", max_attempts=2)


def test_failure_report_requeues_and_a_repeated_one_gives_its_attempt_back() -> None:
    retry = lm.fail(proving(), "lease1", "hash1", "oom", now=T0, max_attempts=3)
    assert retry.status is Status.QUEUED and retry.attempts == 1
    again = lm.fail(proving(), "lease1", "hash1", "oom", now=T0, max_attempts=3, counts=False)
    assert again.status is Status.QUEUED and again.attempts == 0
    capped = lm.fail(proving(attempts=3), "lease1", "hash1", "oom", now=T0, max_attempts=3)
    assert capped.status is Status.FAILED
    with pytest.raises(LeaseLost):
        lm.fail(proving(), "lease1", "forged", "x", now=T0, max_attempts=3)


def test_a_request_without_a_verdict_fails_after_its_deadline_and_grace() -> None:
    req = lm.Request(Status.VERIFYING, 1, DEADLINE, lease())
    assert lm.reap(req, now=DEADLINE, max_attempts=3) is None
    failed = lm.reap(req, now=DEADLINE + lm.VERIFY_GRACE, max_attempts=3)
    assert failed is not None and failed.status is Status.FAILED


@pytest.mark.parametrize("status", [Status.QUEUED, Status.PROVING, Status.VERIFYING])
def test_cancel_applies_to_every_open_state(status: Status) -> None:
    got = lm.cancel(lm.Request(status, 1, DEADLINE, lease()))
    assert got.status is Status.CANCELED and got.lease is None


@pytest.mark.parametrize("status", sorted(lm.TERMINAL))
def test_cancel_refuses_terminal_states(status: Status) -> None:
    with pytest.raises(IllegalTransition):
        lm.cancel(lm.Request(status, 1, DEADLINE))


def test_reaper_returns_an_expired_lease_to_the_queue_then_fails_at_the_cap() -> None:
    after = T0 + TTL
    back = lm.reap(proving(), now=after, max_attempts=3)
    assert back is not None and back.status is Status.QUEUED and back.lease is None
    capped = lm.reap(proving(attempts=3), now=after, max_attempts=3)
    assert capped is not None and capped.status is Status.FAILED
    assert lm.reap(proving(), now=T0, max_attempts=3) is None  # still live


@pytest.mark.parametrize("status", [Status.QUEUED, Status.PROVING])
def test_reaper_expires_waiting_requests_past_their_deadline(status: Status) -> None:
    got = lm.reap(lm.Request(status, 1, DEADLINE, lease()), now=DEADLINE, max_attempts=3)
    assert got is not None and got.status is Status.EXPIRED


@pytest.mark.parametrize("status", [Status.VERIFYING, *sorted(lm.TERMINAL)])
def test_reaper_leaves_verifying_within_its_grace_and_terminal_requests_alone(
    status: Status,
) -> None:
    req = lm.Request(status, 1, DEADLINE, lease())
    now = DEADLINE + (
        lm.VERIFY_GRACE - timedelta(microseconds=1) if status is Status.VERIFYING else TTL
    )
    assert lm.reap(req, now=now, max_attempts=3) is None


def test_expire_refuses_before_the_deadline() -> None:
    with pytest.raises(IllegalTransition):
        lm.expire(queued(), now=T0)


def test_quarantine_threshold() -> None:
    assert not lm.is_quarantined(2, 3)
    assert lm.is_quarantined(3, 3)


def test_a_batch_lease_holds_its_live_requests_and_drops_canceled_or_past_deadline_ones() -> None:
    # a claim caps each request's lease at its own deadline
    end = T0 + timedelta(seconds=10)
    short = lm.Request(Status.PROVING, 1, end, lm.Lease("lease1", "hash1", "provider1", end))
    batch = [proving(), lm.cancel(proving()), short, proving()]
    later = T0 + timedelta(seconds=20)  # past the short request's deadline, within the lease
    assert lm.held(batch, "lease1", "hash1", now=later) == [True, False, False, True]


def test_a_batch_lease_lost_for_one_request_is_lost_for_all() -> None:
    requeued = lm.reap(proving(), now=T0 + TTL, max_attempts=3)
    assert requeued is not None
    with pytest.raises(LeaseLost):
        lm.held([proving(), requeued], "lease1", "hash1", now=T0)
    with pytest.raises(LeaseLost):
        lm.held([proving(), proving()], "lease1", "forged", now=T0)


def test_a_batch_lease_whose_requests_are_all_gone_says_so() -> None:
    with pytest.raises(RequestGone):
        lm.held([lm.cancel(proving()), lm.cancel(proving())], "lease1", "hash1", now=T0)
