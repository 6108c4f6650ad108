"""Hostile-input reproductions from the service review: each test states the behaviour the service
should have and is marked ``xfail(strict=True)`` until the fix lands (the fixer removes the mark).
They run against the real PostgreSQL, queue worker and ezkl verifier, as the other service tests."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from prover.service.app import create_app
from prover.service.models import register_bundle
from prover.service.store import Store
from prover.service.tasks import run_verification
from prover.service.verifier import VerifierUnavailable
from prover.service.webhooks import WebhookUrlError, check_webhook_url
from prover.settings import Settings
from tests.conftest import Compiled
from tests.helpers.service import auth
from tests.service.conftest import register, sample

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Keys of this module's own API over the session's database and queue worker: provider records
# (rejections, quarantine) never mix with those of test_api.py, whose hostile provider ends
# quarantined; each hostile test has a provider of its own.
CLIENT_A = "review-client-" + "0" * 16
PROVIDER = "review-honest-" + "0" * 16
HOSTILE = {name: f"review-{name}-" + "0" * 16 for name in ("fail", "burn", "replay", "nul", "quar")}


@pytest.fixture(scope="module")
def api(
    pg_url: str, worker: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path_factory.mktemp("review-home"),
        dev_srs=True,
        api_keys=[SecretStr(CLIENT_A)],
        provider_keys=[SecretStr(k) for k in (PROVIDER, *HOSTILE.values())],
        dev=True,
        quarantine_after=3,
        max_attempts=3,
        submit_wait_s=60,
    )
    with TestClient(create_app(settings, Store(pg_url))) as client:
        yield client


def _request(api: TestClient, model_id: str, inp: dict[str, Any]) -> str:
    r = api.post(
        "/v1/inferences", json={"model_id": model_id, "input": inp}, headers=auth(CLIENT_A)
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _claim(api: TestClient, model_id: str, key: str) -> dict[str, Any]:
    r = api.post("/v1/leases", json={"models": [model_id], "wait_s": 2}, headers=auth(key))
    assert r.status_code == 200, r.text
    lease: dict[str, Any] = r.json()
    return lease


def _submit(api: TestClient, lease: dict[str, Any], proof: dict[str, Any], key: str) -> Any:
    return api.post(
        f"/v1/leases/{lease['lease_id']}/proof",
        json={"token": lease["token"], "proof": proof},
        headers=auth(key),
    )


def _report(api: TestClient, lease: dict[str, Any], key: str, *, retryable: bool) -> str:
    r = api.post(
        f"/v1/leases/{lease['lease_id']}/failure",
        json={"token": lease["token"], "reason": "unsupported", "retryable": retryable},
        headers=auth(key),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


# -- SSRF: webhook URLs whose host is a loopback address in another spelling --------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.1",  # inet_aton short form: 127.0.0.1
        "2130706433",  # decimal: 127.0.0.1
        "0x7f000001",  # hex: 127.0.0.1
        "0177.0.0.1",  # octal: 127.0.0.1
        "0",  # 0.0.0.0: this host
        "localhost.",  # the fully qualified spelling of localhost
    ],
)
def test_webhook_urls_that_reach_loopback_in_other_spellings_are_refused(host: str) -> None:
    with pytest.raises(WebhookUrlError):
        check_webhook_url(f"https://{host}/hook", allow_private=False)


def test_a_webhook_host_name_that_resolves_to_loopback_is_refused() -> None:
    name = socket.gethostname()  # on most hosts /etc/hosts maps the machine's name to 127.x
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(name, 443)}
    except OSError:
        pytest.skip(f"{name!r} does not resolve here")
    if any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip(f"{name!r} resolves to a public address here ({addresses})")
    with pytest.raises(WebhookUrlError):
        check_webhook_url(f"https://{name}/hook", allow_private=False)


# -- one untrusted provider's word fails a client's request ----------------------------------------


def test_one_providers_non_retryable_failure_does_not_fail_the_request(
    api: TestClient, mlp: Compiled
) -> None:
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp))
    lease = _claim(api, model_id, HOSTILE["fail"])
    assert lease["inference"]["id"] == inference_id
    status = _report(api, lease, HOSTILE["fail"], retryable=False)
    # another provider must get its chance: the claim is a stranger's unverifiable word
    assert status == "queued"
    assert _claim(api, model_id, PROVIDER)["inference"]["id"] == inference_id


def test_one_provider_cannot_use_up_a_requests_attempts_with_failure_reports(
    api: TestClient, mlp: Compiled
) -> None:
    model_id = register(api, mlp)
    inference_id = _request(api, model_id, sample(mlp))
    settings: Settings = api.app.state.settings  # type: ignore[attr-defined]
    burner = HOSTILE["burn"]
    for _ in range(settings.max_attempts):
        r = api.post("/v1/leases", json={"models": [model_id], "wait_s": 0}, headers=auth(burner))
        if r.status_code == 403:  # quarantined for its failure reports: one acceptable fix
            break
        assert r.status_code == 200, r.text
        assert r.json()["inference"]["id"] == inference_id
        _report(api, r.json(), burner, retryable=True)
    # either way, an honest provider must still get to prove the request
    assert api.get(f"/v1/inferences/{inference_id}", headers=auth(CLIENT_A)).json()["status"] == (
        "queued"
    )
    assert _claim(api, model_id, PROVIDER)["inference"]["id"] == inference_id


# -- replay: a copied proof is credited to a provider that proved nothing --------------------------


def test_a_replayed_proof_is_not_accepted_for_a_second_request(
    api: TestClient, mlp: Compiled
) -> None:
    model_id = register(api, mlp)
    proof = json.loads(mlp.proof.read_text())
    first = _request(api, model_id, sample(mlp))
    second = _request(api, model_id, sample(mlp))  # the same input, another client order
    lease = _claim(api, model_id, PROVIDER)
    assert lease["inference"]["id"] == first
    r = _submit(api, lease, proof, PROVIDER)
    assert r.status_code == 200 and r.json()["accepted"] is True, r.text
    copied = api.get(f"/v1/inferences/{first}", headers=auth(CLIENT_A)).json()["proof"]
    lease = _claim(api, model_id, HOSTILE["replay"])
    assert lease["inference"]["id"] == second
    replay = _submit(api, lease, copied, HOSTILE["replay"])
    assert replay.status_code == 200, replay.text
    # halo2 proofs carry fresh blinding: identical bytes are a copy, not a second proving
    assert replay.json()["accepted"] is False


# -- a rejected proof escapes the provider's record when the client cancels ---------------------


def test_an_invalid_proof_counts_against_its_provider_even_if_the_request_is_canceled(
    pg_url: str, mlp: Compiled, tmp_path: Any
) -> None:
    values = json.loads(mlp.sample.read_text())["input_data"]
    tampered = copy.deepcopy(json.loads(mlp.proof.read_text()))
    tampered["proof"][100] ^= 1
    settings = Settings(dev=True, home=tmp_path, max_attempts=3)
    provider = f"evil-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)

    async def scenario() -> int:
        store = Store(pg_url, max_size=4)
        await store.pool.open()
        try:
            model_id = f"cancel-{uuid.uuid4().hex[:8]}"
            await register_bundle(store, model_id, mlp.bundle.root)
            row, _ = await store.create_inference(
                owner="client",
                model_id=model_id,
                bundle_digest="d" * 64,
                values=values,
                deadline=now + timedelta(hours=1),
                webhook_url=None,
                idempotency_key=None,
                request_hash="h",
            )
            claimed = await store.claim(
                provider,
                worker="",
                models=[model_id],
                ttl=timedelta(seconds=60),
                now=now,
                max_attempts=3,
            )
            assert claimed is not None and claimed.row["id"] == row["id"]
            await store.submit(
                provider, claimed.lease_id, claimed.token, proof=tampered, prove_s=None, now=now
            )
            await store.cancel(row["id"], "client")  # before the verify job runs
            await run_verification(store, settings, claimed.lease_id)
            rejected: int = (await store.provider(provider))["rejected"]
            return rejected
        finally:
            await store.pool.close()

    assert asyncio.run(scenario()) == 1


# -- NUL characters reach PostgreSQL and answer 500 (not a problem document) ------------------


@pytest.mark.parametrize(
    "case",
    [
        "create_model_id",
        "create_webhook_url",
        "get_model",
        "get_inference",
        "list_after",
        "claim_models",
        "submit_proof",
        "submit_proof_nan",
        "submit_proof_lone_surrogate",
        "failure_detail",
    ],
)
def test_nul_characters_get_a_problem_not_a_server_error(
    api: TestClient, mlp: Compiled, case: str
) -> None:
    model_id = register(api, mlp)
    body = {"model_id": model_id, "input": sample(mlp)}
    client = auth(CLIENT_A)
    if case.startswith("submit_proof") or case == "failure_detail":
        _request(api, model_id, sample(mlp))
        lease = _claim(api, model_id, HOSTILE["nul"])
    if case == "create_model_id":
        r = api.post("/v1/inferences", json={**body, "model_id": "m\u0000"}, headers=client)
    elif case == "create_webhook_url":
        url = "http://127.0.0.1/\u0000"
        r = api.post("/v1/inferences", json={**body, "webhook_url": url}, headers=client)
    elif case == "get_model":
        r = api.get("/v1/models/m%00", headers=client)
    elif case == "get_inference":
        r = api.get("/v1/inferences/inf_%00", headers=client)
    elif case == "list_after":
        r = api.get("/v1/inferences", params={"after": "inf_\u0000"}, headers=client)
    elif case == "claim_models":
        r = api.post(
            "/v1/leases", json={"models": ["m\u0000"], "wait_s": 0}, headers=auth(PROVIDER)
        )
    elif case == "submit_proof":
        proof = {**json.loads(mlp.proof.read_text()), "note": "\u0000"}
        r = api.post(
            f"/v1/leases/{lease['lease_id']}/proof",
            json={"token": lease["token"], "proof": proof},
            headers=auth(HOSTILE["nul"]),
        )
    elif case.startswith("submit_proof_"):
        # what PostgreSQL's jsonb refuses though Python's json reads it: NaN, an unpaired surrogate
        odd = "NaN" if case == "submit_proof_nan" else '"\\ud800"'
        text = json.dumps({"token": lease["token"], "proof": json.loads(mlp.proof.read_text())})
        r = api.post(
            f"/v1/leases/{lease['lease_id']}/proof",
            content=text[:-2] + f', "note": {odd}}}}}',
            headers={**auth(HOSTILE["nul"]), "content-type": "application/json"},
        )
    else:
        r = api.post(
            f"/v1/leases/{lease['lease_id']}/failure",
            json={
                "token": lease["token"],
                "reason": "internal",
                "retryable": True,
                "detail": "\u0000",
            },
            headers=auth(HOSTILE["nul"]),
        )
    assert r.status_code in (400, 404, 422), r.text
    assert r.headers["content-type"] == "application/problem+json"


# -- pagination ----------------------------------------------------------------------------------


def test_an_unknown_page_cursor_is_refused(api: TestClient, mlp: Compiled) -> None:
    model_id = register(api, mlp)
    _request(api, model_id, sample(mlp))
    r = api.get(
        "/v1/inferences",
        params={"model_id": model_id, "after": "inf_" + "0" * 32},
        headers=auth(CLIENT_A),
    )
    assert r.status_code == 422, r.text


# -- error details leak the server's file system -------------------------------------------------


def test_a_verifier_failure_does_not_tell_clients_the_servers_paths(
    api: TestClient, mlp: Compiled, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(mlp.bundle.root, bundle)
    model_id = f"leak-{uuid.uuid4().hex[:8]}"
    store: Store = api.app.state.store  # type: ignore[attr-defined]
    assert api.portal is not None
    api.portal.call(register_bundle, store, model_id, bundle)
    key = (bundle / "vk.key").read_bytes()
    (bundle / "vk.key").write_bytes(key[:-1] + bytes([key[-1] ^ 1]))  # the service's fault
    r = api.post(
        "/v1/verify",
        json={"model_id": model_id, "proof": json.loads(mlp.proof.read_text())},
        headers=auth(CLIENT_A),
    )
    assert r.status_code == 503, r.text
    assert str(tmp_path) not in r.text


# -- a request whose verification can never finish waits forever -------------------------------


def test_a_request_stuck_in_verification_ends_after_its_deadline(
    pg_url: str, mlp: Compiled, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(mlp.bundle.root, bundle)
    values = json.loads(mlp.sample.read_text())["input_data"]
    proof = json.loads(mlp.proof.read_text())
    settings = Settings(dev=True, home=tmp_path, max_attempts=3)
    now = datetime.now(UTC)

    async def scenario() -> str:
        store = Store(pg_url, max_size=4)
        await store.pool.open()
        try:
            model_id = f"stuck-{uuid.uuid4().hex[:8]}"
            await register_bundle(store, model_id, bundle)
            row, _ = await store.create_inference(
                owner="client",
                model_id=model_id,
                bundle_digest="d" * 64,
                values=values,
                deadline=now + timedelta(minutes=5),
                webhook_url=None,
                idempotency_key=None,
                request_hash="h",
            )
            claimed = await store.claim(
                "honest",
                worker="",
                models=[model_id],
                ttl=timedelta(seconds=60),
                now=now,
                max_attempts=3,
            )
            assert claimed is not None
            await store.submit(
                "honest", claimed.lease_id, claimed.token, proof=proof, prove_s=None, now=now
            )
            key = (bundle / "vk.key").read_bytes()
            (bundle / "vk.key").write_bytes(key[:-1] + bytes([key[-1] ^ 1]))
            with pytest.raises(VerifierUnavailable):
                await run_verification(store, settings, claimed.lease_id)
            await store.reap(now=now + timedelta(minutes=6), max_attempts=3)  # past its deadline
            status: str = (await store.get_inference(row["id"]))["status"]
            return status
        finally:
            await store.pool.close()

    assert asyncio.run(scenario()) in ("expired", "failed")


# -- a quarantined provider keeps using the leases it already holds --------------------------


def test_a_quarantined_provider_cannot_renew_submit_or_download_on_a_lease_it_holds(
    api: TestClient, mlp: Compiled
) -> None:
    model_id = register(api, mlp)
    _request(api, model_id, sample(mlp))
    key = HOSTILE["quar"]
    lease = _claim(api, model_id, key)
    store: Store = api.app.state.store  # type: ignore[attr-defined]
    settings: Settings = api.app.state.settings  # type: ignore[attr-defined]

    async def quarantine() -> None:  # its proofs were rejected (elsewhere) while it held the lease
        async with store.pool.connection() as conn:
            await conn.execute(
                "UPDATE providers SET rejected = %s WHERE id = ("
                " SELECT provider FROM attempts WHERE lease_id = %s)",
                (settings.quarantine_after, lease["lease_id"]),
            )

    assert api.portal is not None
    api.portal.call(quarantine)
    renew = api.post(
        f"/v1/leases/{lease['lease_id']}/renew", json={"token": lease["token"]}, headers=auth(key)
    )
    assert renew.status_code == 403, renew.text
    submit = _submit(api, lease, json.loads(mlp.proof.read_text()), key)
    assert submit.status_code == 403, submit.text
    bundle = api.get(f"/v1/bundles/{model_id}", headers=auth(key))
    assert bundle.status_code == 403, bundle.text
