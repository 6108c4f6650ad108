"""The service over HTTP against a real PostgreSQL, a real queue worker process (which verifies
every submitted proof in a child ``zkinfer verify``) and real proofs of the reference models."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

from prover.service.app import create_app
from prover.service.store import Store
from prover.service.tasks import Queue, reap_once
from prover.service.webhooks import sign
from prover.settings import Settings, key_id
from tests.conftest import Compiled
from tests.helpers import resync_hex_proof
from tests.helpers.service import (
    CLIENT_A,
    CLIENT_B,
    PROVIDER,
    PROVIDER_EVIL,
    PROVIDER_QUARANTINE,
    WEBHOOK_SECRET,
    auth,
    count_rows,
)
from tests.service.conftest import get_ok, register, sample

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _proof(compiled: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(compiled.proof.read_text())
    return doc


def _request(api: TestClient, model_id: str, inp: dict[str, Any], **extra: Any) -> str:
    r = api.post(
        "/v1/inferences", json={"model_id": model_id, "input": inp, **extra}, headers=auth(CLIENT_A)
    )
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/inferences/{r.json()['id']}"
    return str(r.json()["id"])


def _claim(api: TestClient, model_id: str, key: str = PROVIDER) -> dict[str, Any]:
    r = api.post("/v1/leases", json={"models": [model_id], "wait_s": 2}, headers=auth(key))
    assert r.status_code == 200, r.text
    lease: dict[str, Any] = r.json()
    return lease


def _submit(api: TestClient, lease: dict[str, Any], proof: dict[str, Any], key: str = PROVIDER):  # type: ignore[no-untyped-def]
    return api.post(
        f"/v1/leases/{lease['lease_id']}/proof",
        json={"token": lease["token"], "proof": proof, "prove_s": 1.5},
        headers=auth(key),
    )


def _status(api: TestClient, inference_id: str) -> dict[str, Any]:
    return get_ok(api, f"/v1/inferences/{inference_id}")


def test_an_honest_proof_is_verified_and_accepted_with_outputs_and_calldata(
    api: TestClient, mlp: Compiled, tmp_path: Path
) -> None:
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp))
    assert _status(api, inference_id)["status"] == "queued"
    lease = _claim(api, model_id)
    assert lease["inference"]["id"] == inference_id
    assert lease["inference"]["input"] == sample(mlp)
    assert _status(api, inference_id)["status"] == "proving"

    r = _submit(api, lease, _proof(mlp))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": True, "reason": None}

    done = _status(api, inference_id)
    assert done["status"] == "done" and done["verified"] is True
    assert done["provider"] == key_id(PROVIDER)
    expected = _proof(mlp)["zkinfer"]["outputs"]
    assert all(
        math.isclose(a, b, abs_tol=1e-9)
        for a, b in zip(done["outputs"][0], expected[0], strict=True)
    )
    assert done["proof"]["proof"] == _proof(mlp)["proof"]
    assert "zkinfer" not in done["proof"]  # the provider's unverified claims are not passed on
    assert done["timings"]["prove_s"] == 1.5
    check = {"model_id": model_id, "proof": done["proof"], "input": sample(mlp)}
    assert api.post("/v1/verify", json=check, headers=auth(CLIENT_A)).json()["valid"] is True
    import ezkl  # the calldata must be exactly what ezkl encodes for the verifier contract

    ours = bytes.fromhex(done["calldata"].removeprefix("0x"))
    theirs = bytes(ezkl.encode_evm_calldata(str(mlp.proof), str(tmp_path / "calldata"), None))
    # ezkl 23 appends one zero word after the canonical ABI encoding (see the fixtures script)
    assert theirs == ours + bytes(32)
    assert done["timings"]["total_s"] is not None and done["timings"]["total_s"] >= 0

    # accepted at most once: the same lease cannot hand in another proof
    again = _submit(api, lease, _proof(mlp))
    assert again.status_code == 409, again.text


def test_hostile_submissions_are_rejected_counted_and_an_honest_prover_still_finishes(
    api: TestClient, mlp: Compiled, cnn: Compiled, pg_url: str
) -> None:
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp))
    tampered = copy.deepcopy(_proof(mlp))
    tampered["proof"][100] ^= 1
    resync_hex_proof(tampered)  # one consistent document: the cryptographic check rejects it
    other_input = sample(mlp)
    other_input["input_data"][0][0] += 0.5
    other_request = _request(api, model_id, other_input)  # the sample's proof is for another input

    verdicts = []
    for bad in (tampered, _proof(cnn)):
        lease = _claim(api, model_id, PROVIDER_EVIL)
        assert lease["inference"]["id"] == inference_id
        r = _submit(api, lease, bad, PROVIDER_EVIL)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] is False
        verdicts.append(r.json()["reason"])
        assert _status(api, inference_id)["status"] == "queued"
    assert "does not verify" in verdicts[0] or "verif" in verdicts[0]
    assert "malformed" in verdicts[1] or "model" in verdicts[1]

    # a stale token on a live lease is refused without touching the request
    lease = _claim(api, model_id, PROVIDER)
    assert lease["inference"]["id"] == inference_id
    stale = {**lease, "token": "not-the-token"}
    assert _submit(api, stale, _proof(mlp)).status_code == 409
    assert _status(api, inference_id)["status"] == "proving"
    assert _submit(api, lease, _proof(mlp)).json()["accepted"] is True

    # a replay of the accepted proof for a request about another input is rejected
    lease = _claim(api, model_id, PROVIDER_EVIL)
    assert lease["inference"]["id"] == other_request
    r = _submit(api, lease, _proof(mlp), PROVIDER_EVIL)
    assert r.json()["accepted"] is False and "not about the input" in r.json()["reason"]

    assert _status(api, inference_id)["attempts"] == 3
    evil = key_id(PROVIDER_EVIL)
    assert count_rows(pg_url, "SELECT rejected FROM providers WHERE id = %s", evil) == 3
    assert (
        count_rows(
            pg_url,
            "SELECT count(*) FROM attempts WHERE inference_id = %s AND outcome = 'accepted'",
            inference_id,
        )
        == 1
    )
    # three rejections: the provider is quarantined
    r = api.post(
        "/v1/leases", json={"models": [model_id], "wait_s": 0}, headers=auth(PROVIDER_EVIL)
    )
    assert r.status_code == 403 and "quarantined" in r.json()["title"].lower()
    metrics = api.get("/metrics").text
    assert 'zkinfer_proofs_total{outcome="rejected",reason="wrong_input"}' in metrics


def test_quarantine_counts_only_this_providers_rejections(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    _request(api, model_id, sample(mlp))
    lease = _claim(api, model_id, PROVIDER_QUARANTINE)
    r = api.post(
        f"/v1/leases/{lease['lease_id']}/failure",
        json={"token": lease["token"], "reason": "out_of_memory", "retryable": True},
        headers=auth(PROVIDER_QUARANTINE),
    )
    assert r.status_code == 200 and r.json() == {"status": "queued"}
    # a failure report is not a rejected proof: the provider may still lease
    assert _claim(api, model_id, PROVIDER_QUARANTINE)["inference"]["model_id"] == model_id


def test_one_idempotency_key_twice_makes_one_request(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    body = {"model_id": model_id, "input": sample(mlp)}
    headers = {**auth(CLIENT_A), "Idempotency-Key": "order-42"}
    first = api.post("/v1/inferences", json=body, headers=headers)
    second = api.post("/v1/inferences", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    changed = api.post("/v1/inferences", json={**body, "deadline_s": 60}, headers=headers)
    assert changed.status_code == 422 and "Idempotency-Key" in changed.json()["detail"]
    other_client = api.post(
        "/v1/inferences", json=body, headers={**auth(CLIENT_B), "Idempotency-Key": "order-42"}
    )
    assert other_client.json()["id"] != first.json()["id"]  # keys are per client


def test_auth_matrix(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp))
    assert api.get(f"/v1/inferences/{inference_id}").status_code == 401
    wrong = api.get(f"/v1/inferences/{inference_id}", headers=auth("x" * 20))
    assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" in wrong.headers
    # a client key cannot lease, submit or download bundles
    assert api.post("/v1/leases", json={}, headers=auth(CLIENT_A)).status_code == 403
    assert api.get(f"/v1/bundles/{model_id}", headers=auth(CLIENT_A)).status_code == 403
    # a provider key cannot read or make clients' requests
    assert api.get(f"/v1/inferences/{inference_id}", headers=auth(PROVIDER)).status_code == 403
    assert api.get("/v1/inferences", headers=auth(PROVIDER)).status_code == 403
    # a client sees only its own requests
    assert api.get(f"/v1/inferences/{inference_id}", headers=auth(CLIENT_B)).status_code == 404
    assert (
        api.post(f"/v1/inferences/{inference_id}/cancel", headers=auth(CLIENT_B)).status_code == 404
    )
    mine = api.get("/v1/inferences", params={"model_id": model_id}, headers=auth(CLIENT_A))
    theirs = api.get("/v1/inferences", params={"model_id": model_id}, headers=auth(CLIENT_B))
    assert [i["id"] for i in mine.json()["items"]] == [inference_id]
    assert theirs.json()["items"] == []


def test_listing_pages_and_filters_by_status(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    ids = [_request(api, model_id, sample(mlp)) for _ in range(3)]
    api.post(f"/v1/inferences/{ids[1]}/cancel", headers=auth(CLIENT_A))
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"model_id": model_id, "limit": 2}
        if after:
            params["after"] = after
        page = api.get("/v1/inferences", params=params, headers=auth(CLIENT_A)).json()
        seen += [i["id"] for i in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == ids
    canceled = api.get(
        "/v1/inferences",
        params={"model_id": model_id, "status": "canceled"},
        headers=auth(CLIENT_A),
    ).json()["items"]
    assert [i["id"] for i in canceled] == [ids[1]]


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (lambda b: b["input"]["input_data"][0].pop(), 422, "values but the model expects"),
        (lambda b: b["input"]["input_data"][0].__setitem__(0, float("nan")), 422, "NaN"),
        (lambda b: b["input"]["input_data"][0].__setitem__(0, 1e9), 422, "calibrated range"),
        (lambda b: b.__setitem__("input", {"values": [1]}), 422, "input_data"),
        (lambda b: b.__setitem__("model_id", "no-such-model"), 404, "no-such-model"),
        (lambda b: b.__setitem__("webhook_url", "ftp://example.com/x"), 422, "https"),
        (lambda b: b.__setitem__("webhook_url", "https://u:p@example.com/"), 422, "credentials"),
        (lambda b: b.__setitem__("deadline_s", -1), 422, "deadline_s"),
        (lambda b: b.__setitem__("extra", 1), 422, "extra"),
    ],
)
def test_bad_requests_get_a_clear_problem_and_store_nothing(
    api: TestClient, mlp: Compiled, pg_url: str, change: Any, status: int, words: str
) -> None:
    model_id = register(api, mlp)
    body: dict[str, Any] = {"model_id": model_id, "input": sample(mlp)}
    change(body)
    r = api.post(
        "/v1/inferences",
        content=json.dumps(body),  # json.dumps writes NaN as the bare token NaN
        headers={**auth(CLIENT_A), "content-type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"]
    assert count_rows(pg_url, "SELECT count(*) FROM inferences WHERE model_id = %s", model_id) == 0


def test_an_oversize_body_is_refused_before_it_is_read(
    api: TestClient, mlp: Compiled, pg_url: str
) -> None:
    model_id = register(api, mlp)
    body = {"model_id": model_id, "input": {"input_data": [[0.1] * 100_000]}}
    r = api.post("/v1/inferences", json=body, headers=auth(CLIENT_A))
    assert r.status_code == 413 and "exceeds" in r.json()["detail"]
    assert count_rows(pg_url, "SELECT count(*) FROM inferences WHERE model_id = %s", model_id) == 0


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(
    api: TestClient, mlp: Compiled, pg_url: str
) -> None:
    model_id = register(api, mlp)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted while reading
        yield b'{"model_id": "' + model_id.encode() + b'", "input": {"input_data": [['
        for _ in range(40):
            yield b"0.1, " * 2000
        yield b"0.1]]}}"

    r = api.post(
        "/v1/inferences",
        content=chunks(),
        headers={**auth(CLIENT_A), "content-type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert count_rows(pg_url, "SELECT count(*) FROM inferences WHERE model_id = %s", model_id) == 0


def test_cancel_reaches_the_prover_and_nothing_is_accepted(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp))
    lease = _claim(api, model_id)
    r = api.post(f"/v1/inferences/{inference_id}/cancel", headers=auth(CLIENT_A))
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    renew = api.post(
        f"/v1/leases/{lease['lease_id']}/renew",
        json={"token": lease["token"]},
        headers=auth(PROVIDER),
    )
    assert renew.status_code == 410
    assert _submit(api, lease, _proof(mlp)).status_code == 410
    assert _status(api, inference_id)["status"] == "canceled"
    again = api.post(f"/v1/inferences/{inference_id}/cancel", headers=auth(CLIENT_A))
    assert again.status_code == 409


def test_renew_extends_a_live_lease(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    _request(api, model_id, sample(mlp))
    lease = _claim(api, model_id)
    r = api.post(
        f"/v1/leases/{lease['lease_id']}/renew",
        json={"token": lease["token"]},
        headers=auth(PROVIDER),
    )
    assert r.status_code == 200
    assert datetime.fromisoformat(r.json()["expires_at"]) >= datetime.fromisoformat(
        lease["expires_at"]
    )
    forged = api.post(
        f"/v1/leases/{lease['lease_id']}/renew", json={"token": "forged"}, headers=auth(PROVIDER)
    )
    assert forged.status_code == 409
    # another provider cannot even see the lease
    other = api.post(
        f"/v1/leases/{lease['lease_id']}/renew",
        json={"token": lease["token"]},
        headers=auth(PROVIDER_QUARANTINE),
    )
    assert other.status_code == 404


def test_reaper_requeues_expired_leases_and_expires_requests_past_deadline(
    api: TestClient, mlp: Compiled
) -> None:
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp), deadline_s=120)
    lease = _claim(api, model_id)
    store: Store = api.app.state.store  # type: ignore[attr-defined]
    assert api.portal is not None
    after_lease = datetime.now(UTC) + timedelta(seconds=90)
    api.portal.call(functools.partial(store.reap, now=after_lease, max_attempts=5))
    assert _status(api, inference_id)["status"] == "queued"
    lost = _submit(api, lease, _proof(mlp))  # the old lease is gone
    assert lost.status_code == 409
    api.portal.call(
        functools.partial(store.reap, now=after_lease + timedelta(seconds=60), max_attempts=5)
    )
    expired = _status(api, inference_id)
    assert expired["status"] == "expired" and expired["reason"] == "deadline passed"


def test_bundle_listing_and_resumable_download(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    listing = api.get(f"/v1/bundles/{model_id}", headers=auth(PROVIDER)).json()
    assert listing["bundle_digest"] == mlp.bundle.digest
    files = {f["name"]: f for f in listing["files"]}
    assert {"pk.key", "vk.key", "manifest.json", "settings.json"} <= files.keys()
    vk = files["vk.key"]
    whole = api.get(vk["url"], headers=auth(PROVIDER))
    assert hashlib.sha256(whole.content).hexdigest() == vk["sha256"]
    part = api.get(vk["url"], headers={**auth(PROVIDER), "Range": "bytes=10-"})
    assert part.status_code == 206 and part.content == whole.content[10:]
    missing = api.get(f"/v1/bundles/{model_id}/files/..%2Fmanifest.json", headers=auth(PROVIDER))
    assert missing.status_code == 404


def test_verify_endpoint_checks_a_proof_in_a_child_process(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    ok = api.post(
        "/v1/verify",
        json={"model_id": model_id, "proof": _proof(mlp), "input": sample(mlp)},
        headers=auth(CLIENT_A),
    )
    assert ok.status_code == 200 and ok.json()["valid"] is True
    tampered = _proof(mlp)
    tampered["instances"][0][-1] = tampered["instances"][0][0]
    bad = api.post(
        "/v1/verify", json={"model_id": model_id, "proof": tampered}, headers=auth(CLIENT_A)
    )
    assert bad.status_code == 200 and bad.json()["valid"] is False and bad.json()["reason"]


class _Receiver(BaseHTTPRequestHandler):
    """Records every delivery; answers 503 to the first one, to make the queue retry it."""

    got: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        _Receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(503 if len(_Receiver.got) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhooks_are_signed_retried_and_sent_for_every_terminal_state(
    api: TestClient, mlp: Compiled
) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        model_id = register(api, mlp)
        url = f"http://127.0.0.1:{server.server_port}/hook"
        canceled = _request(api, model_id, sample(mlp), webhook_url=url)
        api.post(f"/v1/inferences/{canceled}/cancel", headers=auth(CLIENT_A))
        done = _request(api, model_id, sample(mlp), webhook_url=url)
        assert _submit(api, _claim(api, model_id), _proof(mlp)).json()["accepted"] is True
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while len({h["webhook-id"] for h, _ in _Receiver.got}) < 2 or len(_Receiver.got) < 3:
            assert datetime.now(UTC) < deadline, _Receiver.got
            threading.Event().wait(0.2)
    finally:
        server.shutdown()
    events = {}
    for headers, body in _Receiver.got:
        expected = sign(
            WEBHOOK_SECRET, headers["webhook-id"], int(headers["webhook-timestamp"]), body
        )
        assert headers["webhook-signature"] == expected
        events[headers["webhook-id"]] = json.loads(body)
    assert events[f"msg_{canceled}_canceled"] == {
        "type": "inference.canceled",
        "data": {
            "id": canceled,
            "model_id": model_id,
            "status": "canceled",
            "reason": "canceled by the client",
        },
    }
    assert events[f"msg_{done}_done"]["type"] == "inference.done"
    ids = [h["webhook-id"] for h, _ in _Receiver.got]
    assert ids.count(ids[0]) == 2  # the first delivery got 503 and was retried, same id


def test_health_readiness_metrics_and_stable_operation_ids(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    metrics = api.get("/metrics")
    assert "zkinfer_requests" in metrics.text and "zkinfer_http_request_seconds" in metrics.text
    ids = {
        op["operationId"]
        for path in api.app.openapi()["paths"].values()  # type: ignore[attr-defined]
        for op in path.values()
    }
    assert {
        "createInference",
        "getInference",
        "listInferences",
        "cancelInference",
        "verifyProof",
        "listModels",
        "getModel",
        "claimLease",
        "renewLease",
        "submitProof",
        "reportFailure",
        "getBundle",
        "getBundleFile",
    } <= ids


def test_a_submission_answers_202_while_the_verdict_is_pending(
    api: TestClient, mlp: Compiled, pg_url: str
) -> None:
    settings: Settings = api.app.state.settings  # type: ignore[attr-defined]
    impatient = settings.model_copy(update={"submit_wait_s": 0.0})
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp))
    with TestClient(create_app(impatient, Store(pg_url))) as other:  # a second API process
        lease = _claim(other, model_id)
        r = _submit(other, lease, _proof(mlp))
        assert r.status_code == 202 and r.json() == {"accepted": None, "reason": None}
        assert _submit(other, lease, _proof(mlp)).status_code == 409  # the lease is closed
    give_up = datetime.now(UTC) + timedelta(seconds=60)
    while (status := _status(api, inference_id)["status"]) == "verifying":
        assert datetime.now(UTC) < give_up
        threading.Event().wait(0.2)
    assert status == "done"


def test_a_submission_whose_verify_job_was_lost_is_verified_after_the_reaper_runs(
    api: TestClient, mlp: Compiled
) -> None:
    """An API process that died between recording a proof and queueing its check loses nothing."""
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp))
    lease = _claim(api, model_id)
    store: Store = api.app.state.store  # type: ignore[attr-defined]
    assert api.portal is not None
    api.portal.call(  # the proof is recorded, but no verify job is queued
        functools.partial(
            store.submit,
            key_id(PROVIDER),
            lease["lease_id"],
            lease["token"],
            proof=_proof(mlp),
            prove_s=None,
            now=datetime.now(UTC),
        )
    )
    threading.Event().wait(0.1)
    settings: Settings = api.app.state.settings  # type: ignore[attr-defined]
    quick = settings.model_copy(update={"verify_timeout_s": 0.01})
    queue: Queue = api.app.state.queue  # type: ignore[attr-defined]
    api.portal.call(reap_once, store, quick, queue)
    give_up = datetime.now(UTC) + timedelta(seconds=60)
    while (status := _status(api, inference_id)["status"]) == "verifying":
        assert datetime.now(UTC) < give_up
        threading.Event().wait(0.2)
    assert status == "done"
