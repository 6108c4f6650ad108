"""End to end with real processes: ``zkinfer serve`` (API and queue worker) over the machine's
PostgreSQL, real ``zkinfer worker --api`` provers and real ezkl proofs.

Each test registers its bundle under a model id of its own, so no test sees another test's queue.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prover.core.prove import prove
from prover.core.verify import verify
from prover.errors import ServiceError
from prover.protocol import ClaimRequest, FailureReason, FailureReport, Lease, ProofSubmission
from prover.worker import RetryPolicy, ServiceClient
from tests.conftest import Compiled
from tests.helpers import resync_hex_proof
from tests.helpers.e2e import (
    TERMINAL,
    Api,
    Client,
    api_process,
    queue_process,
    register,
    service_env,
    start_worker,
    worker_process,
)
from tests.helpers.service import (
    PROVIDER,
    PROVIDER_EVIL,
    SERVICE_ENV,
    count_rows,
)
from tests.helpers.tiny import tiny_input

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: A second hostile provider (the first is quarantined after its three rejected proofs).
EVIL_2 = "provider-evil-two-" + "0" * 16
#: Short leases: a killed worker's request is handed on within seconds, renewals happen often.
LEASE_TTL_S = "4"


@pytest.fixture(scope="module")
def env(private_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("service-home")
    return service_env(
        private_pg_url,
        home,
        ZKINFER_LEASE_TTL_S=LEASE_TTL_S,
        ZKINFER_MAX_ATTEMPTS="10",
        ZKINFER_PROVIDER_KEYS=f"{SERVICE_ENV['ZKINFER_PROVIDER_KEYS']},{EVIL_2}",
    )


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    logs = tmp_path_factory.mktemp("service-logs")
    with queue_process(env, logs / "queue.log"), api_process(env, logs / "api.log") as api:
        yield api


def _only(model_id: str) -> tuple[str, ...]:
    """Worker options serving only this test's model: no test proves another test's requests."""
    return ("--model", model_id, "--wait", "5")


def _model(private_pg_url: str, compiled: Compiled) -> str:
    model_id = f"{compiled.name}-{uuid.uuid4().hex[:8]}"
    register(private_pg_url, model_id, compiled.bundle.root)
    return model_id


def _sample(compiled: Compiled) -> dict[str, Any]:
    return {"input_data": json.loads(compiled.sample.read_text())["input_data"]}


def _accepted(private_pg_url: str, inference_id: str) -> int:
    return count_rows(
        private_pg_url,
        "SELECT count(*) FROM attempts WHERE inference_id = %s AND outcome = 'accepted'",
        inference_id,
    )


def test_one_request_over_http_is_proven_by_a_worker_and_reverified(
    api: Api, private_pg_url: str, tiny: Compiled, tmp_path: Path
) -> None:
    model_id = _model(private_pg_url, tiny)
    client = Client(api.url)
    inference_id = client.request(model_id, _sample(tiny))
    worker = start_worker(
        api.url, PROVIDER, tmp_path / "home", tmp_path / "worker.log", *_only(model_id), "--once"
    )
    assert worker.wait(timeout=180) == 0, worker.stderr()
    assert [line["status"] for line in worker.lines] == ["accepted"], worker.lines
    assert worker.lines[0]["inference_id"] == inference_id
    assert "ZKINFER" not in worker.stderr() and PROVIDER not in worker.stderr()

    done = client.wait(inference_id, TERMINAL, 60)
    assert done["status"] == "done" and done["verified"] is True
    # the client checks the proof itself against its own copy of the bundle and its input
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(done["proof"]))
    verdict = verify(proof, tiny.bundle.root, input_path=tiny.sample)
    assert verdict.valid
    assert verdict.outputs == done["outputs"] == worker.lines[0]["outputs"]
    assert _accepted(private_pg_url, inference_id) == 1
    # the worker cached the bundle by model and digest, checked
    # (in the worker's cache folder, tests/helpers/e2e.py: ZKINFER_CACHE_DIR=home/cache)
    cached = tmp_path / "home" / "cache" / "worker" / "bundles" / model_id / tiny.bundle.digest
    assert (cached / ".complete").is_file() and not list(cached.glob("*.part"))


def test_sigterm_mid_proof_finishes_and_submits_then_exits_0(
    api: Api, private_pg_url: str, mlp: Compiled, tmp_path: Path
) -> None:
    model_id = _model(private_pg_url, mlp)
    client = Client(api.url)
    inference_id = client.request(model_id, _sample(mlp))
    worker = start_worker(
        api.url, PROVIDER, tmp_path / "home", tmp_path / "worker.log", *_only(model_id)
    )
    worker.wait_for_stderr("… prove", 180)
    assert worker.stop(signal.SIGTERM, timeout=180) == 0, worker.stderr()
    assert "finishing the current lease" in worker.stderr()
    assert [line["status"] for line in worker.lines] == ["accepted"], worker.stderr()
    assert client.wait(inference_id, TERMINAL, 60)["status"] == "done"
    assert _accepted(private_pg_url, inference_id) == 1


def test_sigterm_while_idle_exits_0_without_a_lease(api: Api, tmp_path: Path) -> None:
    worker = start_worker(
        api.url,
        PROVIDER,
        tmp_path / "home",
        tmp_path / "worker.log",
        "--wait",
        "2",
        "--model",
        "no-such-model",
    )
    worker.wait_for_stderr("serving", 60)
    time.sleep(1)
    t0 = time.monotonic()
    assert worker.stop(signal.SIGTERM, timeout=60) == 0, worker.stderr()
    assert time.monotonic() - t0 < 30
    assert worker.lines == []


def test_a_worker_killed_mid_proof_loses_nothing_and_another_completes_once(
    api: Api, private_pg_url: str, mlp: Compiled, tmp_path: Path
) -> None:
    model_id = _model(private_pg_url, mlp)
    client = Client(api.url)
    inference_id = client.request(model_id, _sample(mlp))
    first = start_worker(api.url, PROVIDER, tmp_path / "a", tmp_path / "a.log", *_only(model_id))
    first.wait_for_stderr("… prove", 180)
    assert client.get(inference_id)["status"] == "proving"
    first.stop(signal.SIGKILL)
    with worker_process(
        api.url, PROVIDER, tmp_path / "b", tmp_path / "b.log", *_only(model_id)
    ) as second:
        done = client.wait(inference_id, TERMINAL, 240)
        assert done["status"] == "done", (done, second.stderr())
    assert first.lines == []
    attempts = count_rows(
        private_pg_url, "SELECT count(*) FROM attempts WHERE inference_id = %s", inference_id
    )
    assert attempts == 2  # the killed worker's lease expired, the second one was accepted
    assert _accepted(private_pg_url, inference_id) == 1


def test_cancel_mid_proof_stops_the_worker_and_nothing_is_accepted(
    api: Api, private_pg_url: str, mlp: Compiled, tmp_path: Path
) -> None:
    model_id = _model(private_pg_url, mlp)
    client = Client(api.url)
    inference_id = client.request(model_id, _sample(mlp))
    with worker_process(
        api.url, PROVIDER, tmp_path / "home", tmp_path / "w.log", *_only(model_id)
    ) as worker:
        worker.wait_for_stderr("… prove", 180)
        canceled_at = time.monotonic()
        r = client.http.post(f"/v1/inferences/{inference_id}/cancel")
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while not worker.lines and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [line["status"] for line in worker.lines] == ["canceled"], worker.stderr()
        # the heartbeat (every third of the lease) saw the 410 and killed the proof
        assert time.monotonic() - canceled_at < float(LEASE_TTL_S) + 10
    assert client.get(inference_id)["status"] == "canceled"
    assert _accepted(private_pg_url, inference_id) == 0
    submitted = count_rows(
        private_pg_url,
        "SELECT count(*) FROM attempts WHERE inference_id = %s AND submitted_at IS NOT NULL",
        inference_id,
    )
    assert submitted == 0


def test_the_same_idempotency_key_twice_makes_one_request(
    api: Api, private_pg_url: str, tiny: Compiled
) -> None:
    model_id = _model(private_pg_url, tiny)
    client = Client(api.url)
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = client.request(model_id, _sample(tiny), **key)
    second = client.request(model_id, _sample(tiny), **key)
    assert first == second
    rows = count_rows(
        private_pg_url, "SELECT count(*) FROM inferences WHERE model_id = %s", model_id
    )
    assert rows == 1


def _evil(api: Api, key: str) -> ServiceClient:
    """A hostile provider speaking the protocol with the worker's own client."""
    return ServiceClient(api.url, key, retry=RetryPolicy(attempts=2))


def _lease(client: ServiceClient, model_id: str) -> Lease:
    lease = client.claim(ClaimRequest(models=[model_id], wait_s=5))
    assert lease is not None
    return lease


def _proof(compiled: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(compiled.proof.read_text())
    return doc


def _metric(api: Api, reason: str) -> float:
    text = Client(api.url).http.get("/metrics").text
    name = f'zkinfer_proofs_total{{outcome="rejected",reason="{reason}"}} '
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return values[0] if values else 0.0


def test_a_malicious_worker_is_rejected_and_counted_and_an_honest_one_completes(
    api: Api, private_pg_url: str, tiny: Compiled, mlp: Compiled, tmp_path: Path
) -> None:
    model_id = _model(private_pg_url, tiny)
    client = Client(api.url)
    inference_id = client.request(model_id, _sample(tiny))
    other_input = tmp_path / "other-input.json"
    other_input.write_text(json.dumps(tiny_input(3)))
    prove(tiny.bundle.root, other_input, tmp_path / "other-proof.json")
    other_proof = json.loads((tmp_path / "other-proof.json").read_text())
    evil, evil_2 = _evil(api, PROVIDER_EVIL), _evil(api, EVIL_2)
    tampered = _proof(tiny)
    tampered["proof"][200] ^= 1
    resync_hex_proof(tampered)  # one consistent document: the cryptographic check rejects it
    before = {r: _metric(api, r) for r in ("invalid", "wrong_input", "wrong_model", "malformed")}

    reasons = []
    first: Lease | None = None
    for bad in (tampered, _proof(mlp), other_proof):  # tampered, another model, another input
        lease = _lease(evil, model_id)
        first = first or lease
        assert lease.inference.id == inference_id
        verdict = evil.submit(lease.lease_id, ProofSubmission(token=lease.token, proof=bad))
        assert verdict.accepted is False, verdict
        reasons.append(verdict.reason or "")
        assert client.get(inference_id)["status"] == "queued"
    assert "not about the input" in reasons[2]
    # three rejected proofs: this provider gets no more work
    with pytest.raises(ServiceError) as refused:
        evil.claim(ClaimRequest(models=[model_id], wait_s=0))
    assert refused.value.status == 403

    # stale and foreign lease tokens are refused without touching the request
    lease = _lease(evil_2, model_id)
    assert first is not None
    # (its own live lease with an old token: 409; another provider's lease: 404, not revealed)
    for lease_id, status in ((lease.lease_id, 409), (first.lease_id, 404)):
        with pytest.raises(ServiceError) as stale:
            evil_2.submit(lease_id, ProofSubmission(token=first.token, proof=other_proof))
        assert stale.value.status == status
    assert client.get(inference_id)["status"] == "proving"
    evil_2.report_failure(
        lease.lease_id,
        FailureReport(token=lease.token, reason=FailureReason.INTERNAL, retryable=True),
    )

    honest = start_worker(
        api.url, PROVIDER, tmp_path / "home", tmp_path / "honest.log", *_only(model_id), "--once"
    )
    assert honest.wait(timeout=240) == 0, honest.stderr()
    assert [line["status"] for line in honest.lines] == ["accepted"]
    done = client.wait(inference_id, TERMINAL, 60)
    assert done["status"] == "done" and _accepted(private_pg_url, inference_id) == 1

    # a replay of the accepted proof for a request about another input is rejected
    other = client.request(model_id, tiny_input(5))
    lease = _lease(evil_2, model_id)
    assert lease.inference.id == other
    verdict = evil_2.submit(lease.lease_id, ProofSubmission(token=lease.token, proof=done["proof"]))
    assert verdict.accepted is False and "not about the input" in (verdict.reason or "")
    # and a closed lease takes no second proof
    with pytest.raises(ServiceError) as again:
        evil_2.submit(lease.lease_id, ProofSubmission(token=lease.token, proof=done["proof"]))
    assert again.value.status in (409, 410)

    rejected = count_rows(
        private_pg_url,
        "SELECT count(*) FROM attempts WHERE inference_id IN (%s, %s) AND outcome = 'rejected'",
        inference_id,
        other,
    )
    assert rejected == 4
    after = {r: _metric(api, r) for r in before}
    assert sum(after.values()) - sum(before.values()) == 4
    assert after["wrong_input"] - before["wrong_input"] == 2
