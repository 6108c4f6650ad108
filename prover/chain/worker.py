"""``zkinfer worker --chain``: a provider loop that serves on-chain requests for its bundles.

The chain is the source of truth: every poll reads ``InferenceRequested`` events from a cursor and
asks the market for each request's current state, so a worker killed at any point (even during a
proof) picks the same open requests up again on restart, and a request that someone else settled
meanwhile is simply skipped. The cursor only moves past blocks whose requests are all settled,
expired or given up on; it lives in ``$ZKINFER_HOME/worker/``. Requests of a registration with
several slots (a batch bundle) are settled up to that many at a time with one proof
(:mod:`prover.chain.worker_batch`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from prover.chain.abi_types import MarketContract
from prover.chain.client import ZERO_ADDRESS, ChainClient, TxResult
from prover.chain.deploy import check_registration
from prover.chain.market import (
    OnChainRequest,
    Status,
    fulfill_request,
    proof_commitment,
    prove_request,
    read_request,
)
from prover.chain.worker_batch import handle_batch
from prover.chain.worker_policy import WorkerPolicy, decide, fulfil_gas_estimate
from prover.chain.worker_state import Reporter, WorkerCursor, WorkerOutcome
from prover.core import bundle as b
from prover.core import isolation
from prover.core.progress import NullProgress, Progress
from prover.errors import (
    ArtifactError,
    ChainError,
    RpcUnavailable,
    TransactionReverted,
    UsageError,
    ZkinferError,
)

__all__ = ["WorkerLimits", "WorkerOutcome", "serve_requests"]

#: Reverts after which the request can never be served by this worker; any other is retried.
_FINAL_REVERTS = frozenset(
    f"InferenceMarket{name}"
    for name in (
        "RequestNotOpen",
        "DeadlinePassed",
        "InputMismatch",
        "InstanceCount",
        "ProofRejected",
        "UnknownModel",
    )
)


@dataclass(frozen=True)
class WorkerLimits:
    """What the worker risks: the most stake it posts for one lock, and what it serves at all."""

    max_stake_wei: int = 10**17
    policy: WorkerPolicy = field(default_factory=WorkerPolicy)


class _Worker:
    def __init__(
        self,
        client: ChainClient,
        market: str,
        bundles: dict[str, Path],
        workdir: Path,
        lock: bool,
        limits: WorkerLimits,
        progress: Progress,
    ) -> None:
        self.client = client
        self.market = market
        self.market_reader = MarketContract(client, market)
        self.contract = self.market_reader.contract
        self.bundles = bundles
        self.workdir = workdir
        self.lock = lock
        self.limits = limits
        self.progress = progress
        self.done: set[int] = set()
        self.retrying: dict[int, str] = {}
        self.waiting: set[int] = set()  # skipped as unprofitable for now, already reported
        self.fulfil_gas: dict[str, int] = {}  # model id -> gas of the last fulfil measured
        self.served: dict[str, str | None] = {}  # registration id -> model id, None: not served
        self.slot_count: dict[str, int] = {}  # registration id -> slots it settles separately

    def _proof(self, request: OnChainRequest) -> Path:
        """The request's proof: made once and kept for retries, reused only while it proves the
        input the request committed to (a devnet started afresh reuses request ids)."""
        name = f"{self.client.chain_id}-{self.market.lower()}-request-{request.request_id}.json"
        proof = self.workdir / name
        bundle_dir = self.bundles[request.model_id]
        if proof.is_file():
            with contextlib.suppress(UsageError):  # unreadable or another input: prove again
                if (
                    proof_commitment(b.load_bundle(bundle_dir, check=b.CHAIN_FILES), proof)
                    == request.commitment
                ):
                    return proof
        self.progress.note(
            f"request {request.request_id}: proving for model {request.model_id[:16]}…"
        )
        return prove_request(bundle_dir, request, proof, self.progress)

    def lock_request(self, request: OnChainRequest) -> TxResult | str:
        """Lock the request, or say why it would put the stake at risk."""
        config = self.market_reader.get_model(bytes.fromhex(request.registration_id)).config
        stake, duration = config.min_lock_stake, config.lock_duration
        if stake > self.limits.max_stake_wei:
            return (
                f"the model's lock stake {stake} wei is above the worker's limit of "
                f"{self.limits.max_stake_wei} wei"
            )
        if self.client.now() + duration > request.deadline:  # the market refuses such a lock
            return f"the deadline leaves no full {duration} s lock window"
        return self.client.transact(
            self.contract.functions.lockRequest(request.request_id), "lock request", value=stake
        )

    def _worth_it(self, request: OnChainRequest) -> WorkerOutcome | None:
        """A skip when the request does not pay for its gas (see :mod:`worker_policy`)."""
        gas = self.fulfil_gas.get(request.model_id)
        if gas is None:
            model = self.market_reader.get_model(bytes.fromhex(request.registration_id))
            gas = fulfil_gas_estimate(model.config.instance_count)
        price = int(self.client.rpc("read the gas price", lambda: self.client.w3.eth.gas_price))
        wants_lock = self.lock and request.locked_by != self.client.address
        decision = decide(
            request, self.limits.policy, fulfil_gas=gas, gas_price_wei=price, lock=wants_lock
        )
        if decision.take:
            return None
        return WorkerOutcome(
            request.request_id, request.model_id, "skipped" if decision.final else "waiting",
            decision.reason,
        )  # fmt: skip

    def triage(
        self, request: OnChainRequest, *, check_profit: bool = True
    ) -> tuple[bool, WorkerOutcome | None]:
        """Whether to serve the request now; if not, its outcome (skipped when settled or
        expired, waiting or skipped when it does not pay for its gas, ``None`` while someone else
        holds a lock on it: look again when the lock may have lapsed)."""
        rid, model = request.request_id, request.model_id
        if request.status is not Status.OPEN:
            return False, WorkerOutcome(
                rid, model, "skipped", f"already {request.status.name.lower()}"
            )
        now = self.client.now()
        if now > request.deadline:
            return False, WorkerOutcome(rid, model, "skipped", "deadline passed")
        holder = request.locked_by
        if holder not in (ZERO_ADDRESS, self.client.address) and request.lock_deadline >= now:
            return False, None
        unprofitable = self._worth_it(request) if check_profit else None
        return unprofitable is None, unprofitable

    def handle(self, request_id: int, input_data: bytes) -> WorkerOutcome | None:
        """Serve one request; ``None`` means "not now, look again at the next poll".

        The proof is made before any stake is posted: a request whose data does not match its
        commitment, or that cannot be proven, costs the worker nothing.
        """
        request = read_request(self.client, self.market, request_id, input_data)
        model = request.model_id
        serve, outcome = self.triage(request)
        if not serve:
            return outcome
        proof = self._proof(request)
        txs: dict[str, TxResult] = {}
        if self.lock and request.locked_by != self.client.address:
            # locking only now, right before fulfilling: the fulfil transaction cannot be copied
            # from the mempool, and no stake is at risk while proving
            locked = self.lock_request(request)
            if isinstance(locked, str):
                return WorkerOutcome(request_id, model, "skipped", locked)
            txs["lock"] = locked
        result = fulfill_request(self.client, self.market, self.bundles[model], request_id, proof)
        txs["fulfill"] = result.tx
        if int(request.consumer, 16) == 0:  # measured: the next estimate for this model
            self.fulfil_gas[model] = result.tx.gas_used
        return WorkerOutcome(request_id, model, "fulfilled", "", result.outputs, txs)

    def model_for(self, registration: bytes) -> str | None:
        """The model id of a registration this worker serves: one of its bundles' models,
        registered as that bundle (see check_registration); ``None`` for registrations of other
        models, or of a held model with another verifier or layout (its verifier would reject
        the proofs). Decided once per registration (a registration never changes)."""
        key = bytes(registration).hex()
        if key not in self.served:
            model_id = self.market_reader.get_model(bytes(registration)).model_id.hex()
            folder = self.bundles.get(model_id)
            served: str | None = None
            if folder is not None:
                try:
                    check_registration(
                        self.client,
                        self.market,
                        b.load_bundle(folder, check=b.CHAIN_FILES),
                        bytes(registration),
                    )
                    served = model_id
                except ArtifactError as exc:  # not as the bundle: final
                    self.progress.note(f"not serving registration 0x{key[:16]}…: {exc}")
            self.served[key] = served
            if served is not None:
                config = self.market_reader.get_model(bytes(registration)).config
                self.slot_count[key] = config.batch_size
        return self.served[key]

    def retry(self, request_id: int, model: str, why: str, report: Reporter) -> None:
        if self.retrying.get(request_id) != why:  # say it once per reason, not every poll
            self.retrying[request_id] = why
            report(WorkerOutcome(request_id, model, "retry", why))

    def poll(self, cursor: WorkerCursor, report: Reporter) -> bool:
        """Serve what the blocks since the cursor hold; ``False`` when there was nothing to do
        (no new block, or no request for this worker's models): idle, not an error."""
        latest = int(
            self.client.rpc("read the block number", lambda: self.client.w3.eth.block_number)
        )
        if cursor.block > latest:  # waiting for the next block: an RPC refuses such a range
            return False
        logs = self.client.rpc(
            "read request events",
            lambda: self.contract.events.InferenceRequested().get_logs(
                from_block=cursor.block, to_block=latest
            ),
        )
        pending: list[int] = []  # blocks of requests to look at again
        busy = False
        batches: dict[str, list[tuple[int, bytes, int]]] = {}  # registration -> requests
        for log in logs:
            request_id = int(log["args"]["requestId"])
            registration = bytes(log["args"]["registrationId"])
            model = self.model_for(registration)
            if request_id in self.done or model is None:
                continue
            busy = True
            item = (request_id, bytes(log["args"]["inputData"]), int(log["blockNumber"]))
            if self.slot_count[registration.hex()] > 1:
                batches.setdefault(registration.hex(), []).append(item)
                continue
            one = partial(self._serve_one, request_id, item[1])
            outcomes = self._attempt([request_id], model, one, report)
            pending += self._record(outcomes, {request_id: item[2]}, report)
        for key, items in batches.items():
            model, size = str(self.served[key]), self.slot_count[key]
            for at in range(0, len(items), size):
                chunk = items[at : at + size]
                batch = partial(handle_batch, self, model, [i[:2] for i in chunk], report)
                outcomes = self._attempt([i[0] for i in chunk], model, batch, report)
                pending += self._record(outcomes, {i[0]: i[2] for i in chunk}, report)
        cursor.save(min(pending) if pending else latest + 1)
        return busy

    def _serve_one(self, request_id: int, input_data: bytes) -> dict[int, WorkerOutcome | None]:
        return {request_id: self.handle(request_id, input_data)}

    def _attempt(
        self,
        request_ids: list[int],
        model: str,
        serve: Callable[[], dict[int, WorkerOutcome | None]],
        report: Reporter,
    ) -> dict[int, WorkerOutcome | None]:
        """``serve()``'s outcomes; an error it raises decides every request of ``request_ids``:
        retried at the next poll (RPC refusals, reverts that may pass later) or given up."""
        try:
            return serve()
        except RpcUnavailable:
            raise  # the RPC is gone: nothing more can be done this poll
        except TransactionReverted as exc:
            if exc.error_name not in _FINAL_REVERTS:  # a lock race, a pause: try again later
                for rid in request_ids:
                    self.retry(rid, model, str(exc), report)
                return dict.fromkeys(request_ids)
            return {rid: WorkerOutcome(rid, model, "failed", str(exc)) for rid in request_ids}
        except ChainError as exc:  # refused by the RPC: try again later
            for rid in request_ids:
                self.retry(rid, model, str(exc)[:300], report)
            return dict.fromkeys(request_ids)
        except ZkinferError as exc:  # bad input data, unprovable: report, do not retry
            return {rid: WorkerOutcome(rid, model, "failed", str(exc)) for rid in request_ids}

    def _record(
        self, outcomes: dict[int, WorkerOutcome | None], blocks: dict[int, int], report: Reporter
    ) -> list[int]:
        """Report final outcomes once; the blocks of the requests to look at again."""
        pending: list[int] = []
        for request_id, outcome in outcomes.items():
            if outcome is not None and outcome.status == "waiting":
                if request_id not in self.waiting:  # once per request, not every poll
                    self.waiting.add(request_id)
                    report(outcome)
                pending.append(blocks[request_id])
                continue
            if outcome is None:
                pending.append(blocks[request_id])
                continue
            self.done.add(request_id)
            self.retrying.pop(request_id, None)
            self.waiting.discard(request_id)
            report(outcome)
        return pending


def _held_bundles(bundle_dirs: list[Path]) -> dict[str, Path]:
    """The bundles to serve, by model id, each checked (digests) before anything is proven."""
    bundles: dict[str, Path] = {}
    for d in bundle_dirs:
        bundle = b.load_bundle(Path(d), check=(*b.PROVE_FILES, b.VERIFIER_JSON))
        bundles[bundle.model_id] = Path(d)
    return bundles


def serve_requests(
    client: ChainClient,
    market: str,
    bundle_dirs: list[Path],
    *,
    workdir: Path,
    lock: bool = False,
    once: bool = False,
    poll_s: float = 2.0,
    progress: Progress | None = None,
    report: Reporter = lambda _: None,
    stop: threading.Event | None = None,
    from_block: int | None = None,
    limits: WorkerLimits | None = None,
) -> list[WorkerOutcome]:
    """Serve the market's requests for the models of ``bundle_dirs`` until ``stop`` (or one poll).

    Each outcome is passed to ``report`` as it happens; with ``once`` they are also returned
    (a long-running worker keeps none). ``from_block`` moves the saved cursor (hosted RPCs limit
    how many blocks one log query may span).
    """
    client.address  # fail now, not at the first request, when no key is configured  # noqa: B018
    progress = progress or NullProgress()
    if not bundle_dirs:
        raise UsageError(
            "is missing: the worker needs at least one bundle to serve", field="bundle_dirs"
        )
    bundles = _held_bundles(bundle_dirs)
    workdir.mkdir(parents=True, exist_ok=True)
    worker = _Worker(client, market, bundles, workdir, lock, limits or WorkerLimits(), progress)
    genesis = client.rpc("read the genesis block", lambda: client.w3.eth.get_block(0))["hash"]
    cursor = WorkerCursor(client.chain_id, market, bytes(genesis).hex())
    if from_block is not None:
        cursor.save(from_block)
    if not lock and not client.is_local_devnet:
        progress.note(
            "serving without locking requests: on a public mempool a fulfil transaction can be "
            "copied "
            "and front-run for the reward"
        )
    outcomes: list[WorkerOutcome] = []

    def keep(outcome: WorkerOutcome) -> None:
        if once:
            outcomes.append(outcome)
        report(outcome)

    stop = stop or threading.Event()
    # one ezkl child (with its memory limit) proves every request: its start-up is paid once
    with (
        isolation.ChildProcess(isolation.memory_limit()) as ezkl_child,
        isolation.isolated(ezkl_child),
    ):
        return _poll_until_stopped(worker, cursor, keep, outcomes, stop, once, poll_s, progress)


def _poll_until_stopped(
    worker: _Worker,
    cursor: WorkerCursor,
    keep: Reporter,
    outcomes: list[WorkerOutcome],
    stop: threading.Event,
    once: bool,
    poll_s: float,
    progress: Progress,
) -> list[WorkerOutcome]:
    said = ""  # the last state reported: each is said once, not at every poll
    while True:
        try:
            now = "busy" if worker.poll(cursor, keep) else "idle"
        except ChainError as exc:
            if once:
                raise
            now = f"{str(exc)[:300]}; retrying every {poll_s:g} s"
        if now not in (said, "busy"):
            progress.note("idle: waiting for new requests" if now == "idle" else now)
        said = now
        if once or stop.wait(poll_s):
            return outcomes
