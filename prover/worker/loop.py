"""The untrusted prover's loop: claim a lease, fetch the bundle, prove, submit, repeat.

The service trusts nothing this worker says except a proof it verifies itself; the worker, in turn,
proves only with a bundle whose digests match the lease. While a proof runs, a heartbeat renews the
lease; a 409 (lease lost) or 410 (request canceled or expired) kills the proving child at once and
nothing is submitted. A batch lease (a model compiled with ``--batch N``) is proven as one proof
of its requests in their slots and the padding input in the others, and submitted once. ``stop``
asks for a clean exit: the current proof is finished and submitted while its lease lives, a lease
not yet being proven is given back with a failure report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prover.core.progress import NullProgress, Progress
from prover.errors import ServiceError, ZkinferError
from prover.protocol import (
    MAX_CLAIM_WAIT_S,
    ClaimRequest,
    FailureReason,
    FailureReport,
    Lease,
    ProofSubmission,
)
from prover.worker.bundles import BundleCache, Stopped
from prover.worker.child import ProofCanceled, ProofFailed, ProofMade, ProverProcess
from prover.worker.client import ServiceClient

__all__ = ["LeaseOutcome", "WorkerOptions", "run_worker"]


@dataclass(frozen=True)
class LeaseOutcome:
    """What became of one lease (one JSON line each with ``--json``)."""

    inference_id: str
    lease_id: str
    model_id: str
    attempt: int
    # accepted | rejected | pending (the service still verifies) | lost (409) |
    # canceled (410) | failed (reported) | released (given back unproven: the worker stops) |
    # error (the service could not be reached to finish the lease)
    status: str
    detail: str = ""
    outputs: list[list[float]] | None = None
    prove_s: float | None = None
    # a batch lease: every request's id by slot (null for padding), and each slot's outputs
    batch: list[str | None] | None = None
    slot_outputs: list[list[list[float]] | None] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "inference_id": self.inference_id,
            "lease_id": self.lease_id,
            "model_id": self.model_id,
            "attempt": self.attempt,
            "status": self.status,
            "detail": self.detail,
            "outputs": self.outputs,
            "prove_s": self.prove_s,
            "batch": self.batch,
            "slot_outputs": self.slot_outputs,
        }


@dataclass(frozen=True)
class WorkerOptions:
    """``once``: one claim (and its lease, if any), then return. ``models``: serve only these
    (empty: any model). ``wait_s``: how long one claim long-polls."""

    once: bool = False
    models: list[str] = field(default_factory=list)
    wait_s: float = 10.0
    name: str = ""
    idle_s: float = 1.0


class _Heartbeat:
    """Renews a lease every third of its TTL until stopped; sets ``ended`` on 409 or 410."""

    def __init__(self, client: ServiceClient, lease: Lease, progress: Progress) -> None:
        self.client, self.lease, self.progress = client, lease, progress
        self.ended = threading.Event()
        self.status: int | None = None
        self.detail = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        interval = max(0.2, self.lease.ttl_s / 3)
        while not self._stop.wait(interval):
            try:
                self.client.renew(self.lease.lease_id, self.lease.token)
            except ServiceError as exc:
                if exc.status in (409, 410):
                    self.status, self.detail = exc.status, str(exc)
                    self.ended.set()
                    return
                # unreachable for now: keep proving, the lease may still be renewed in time
                self.progress.note(f"could not renew the lease: {exc}")


class _Worker:
    def __init__(
        self,
        client: ServiceClient,
        cache: BundleCache,
        prover: ProverProcess,
        progress: Progress,
        stop: threading.Event,
        abandon: threading.Event,
    ) -> None:
        self.client, self.cache, self.prover = client, cache, prover
        self.progress = progress
        self.stop, self.abandon = stop, abandon

    def _outcome(self, lease: Lease, status: str, detail: str = "", **kw: Any) -> LeaseOutcome:
        i = lease.inference
        batch = None
        if lease.batch is not None:
            by_slot = {s.slot: s.inference.id for s in lease.batch.slots}
            batch = [by_slot.get(slot) for slot in range(lease.batch.size)]
        return LeaseOutcome(
            i.id, lease.lease_id, i.model_id, lease.attempt, status, detail, batch=batch, **kw
        )

    def _prove(self, lease: Lease, root: Path, cancel: Callable[[], bool]) -> ProofMade:
        """One proof for the lease: its request's input, or every slot of its batch."""
        if lease.batch is None:
            return self.prover.prove(root, lease.inference.input.input_data, cancel=cancel)
        slots: list[list[list[float]] | None] = [None] * lease.batch.size
        for leased in lease.batch.slots:
            slots[leased.slot] = leased.inference.input.input_data
        return self.prover.prove_batch(root, slots, cancel=cancel)

    def _give_back(
        self, lease: Lease, status: str, why: str, reason: FailureReason, retryable: bool
    ) -> LeaseOutcome:
        report = FailureReport(
            token=lease.token, reason=reason, retryable=retryable, detail=why[:2000]
        )
        try:
            self.client.report_failure(lease.lease_id, report)
        except ServiceError as exc:
            if exc.status not in (409, 410):
                raise
            # the lease already ended on the service: nothing to give back
        return self._outcome(lease, status, why)

    def handle(self, lease: Lease) -> LeaseOutcome:
        """Serve one lease to its end; only the service's verdict makes it ``accepted``."""
        inference = lease.inference
        what = f"inference {inference.id}"
        if lease.batch is not None:
            what = (
                f"batch of {len(lease.batch.slots)} inference(s) in {lease.batch.size} slots,"
                f" from {inference.id}"
            )
        self.progress.note(
            f"lease {lease.lease_id}: {what} of model "
            f"{inference.model_id[:16]}… (attempt {lease.attempt}, {lease.ttl_s:.0f} s lease)"
        )
        with _Heartbeat(self.client, lease, self.progress) as beat:
            if self.stop.is_set():
                return self._give_back(
                    lease, "released", "the worker is stopping", FailureReason.INTERNAL, True
                )
            try:
                bundle = self.cache.get(inference.model_id, inference.bundle_digest)
            except Stopped:
                return self._give_back(
                    lease, "released", "the worker is stopping", FailureReason.INTERNAL, True
                )
            except ZkinferError as exc:
                return self._give_back(lease, "failed", str(exc), FailureReason.INTERNAL, True)
            try:
                made = self._prove(
                    lease,
                    bundle.root,
                    cancel=lambda: beat.ended.is_set() or self.abandon.is_set(),
                )
            except ProofCanceled:
                if beat.ended.is_set():
                    status = "lost" if beat.status == 409 else "canceled"
                    return self._outcome(lease, status, beat.detail)
                return self._give_back(
                    lease,
                    "released",
                    "the worker was stopped during the proof",
                    FailureReason.INTERNAL,
                    True,
                )
            except ProofFailed as exc:
                return self._give_back(lease, "failed", str(exc), exc.reason, exc.retryable)
            if beat.ended.is_set():  # ended while the proof came back: never submit
                status = "lost" if beat.status == 409 else "canceled"
                return self._outcome(lease, status, beat.detail)
            submission = ProofSubmission(token=lease.token, proof=made.proof, prove_s=made.prove_s)
        try:
            verdict = self.client.submit(lease.lease_id, submission)
        except ServiceError as exc:
            if exc.status == 409:
                return self._outcome(lease, "lost", str(exc), prove_s=made.prove_s)
            if exc.status == 410:
                return self._outcome(lease, "canceled", str(exc), prove_s=made.prove_s)
            raise
        status = {True: "accepted", False: "rejected", None: "pending"}[verdict.accepted]
        return self._outcome(
            lease,
            status,
            verdict.reason or "",
            outputs=made.outputs,
            prove_s=made.prove_s,
            slot_outputs=made.slot_outputs,
        )


def run_worker(
    client: ServiceClient,
    *,
    options: WorkerOptions | None = None,
    progress: Progress | None = None,
    report: Callable[[LeaseOutcome], None] = lambda _: None,
    stop: threading.Event | None = None,
    abandon: threading.Event | None = None,
    cache: BundleCache | None = None,
) -> list[LeaseOutcome]:
    """Claim and prove leases until ``stop`` is set (or after one claim with ``options.once``).

    ``abandon`` kills a proof in progress and gives its lease back. Returns the outcomes when
    ``once`` (a long-running worker keeps none).
    """
    options = options or WorkerOptions()
    progress = progress or NullProgress()
    stop = stop or threading.Event()
    abandon = abandon or threading.Event()
    cache = cache or BundleCache(client, progress=progress, stop=stop)
    prover = ProverProcess(progress)
    prover.start()  # the child imports ezkl while the first claim waits
    worker = _Worker(client, cache, prover, progress, stop, abandon)
    outcomes: list[LeaseOutcome] = []
    claim = ClaimRequest(
        models=options.models, wait_s=min(options.wait_s, MAX_CLAIM_WAIT_S), worker=options.name
    )
    try:
        while not stop.is_set():
            try:
                lease = client.claim(claim)
            except ServiceError as exc:
                if options.once or (exc.status is not None and exc.status < 500):
                    raise  # a refused key or a protocol mismatch does not heal by waiting
                progress.note(f"{exc}; trying again")
                if stop.wait(options.idle_s):
                    break
                continue
            if lease is not None:
                try:
                    outcome = worker.handle(lease)
                except ServiceError as exc:
                    if options.once:
                        raise
                    # the service stayed unreachable: the lease expires and goes back to the
                    # queue on the service's side; this worker carries on with the next claim
                    i = lease.inference
                    outcome = LeaseOutcome(
                        i.id, lease.lease_id, i.model_id, lease.attempt, "error", str(exc)
                    )
                if options.once:
                    outcomes.append(outcome)
                report(outcome)
            if options.once:
                break
    finally:
        prover.close()
    return outcomes
