"""The worker's HTTP client: retries, problem documents mapped to ServiceError, the provider key
kept to the service's own origin and out of every message. httpx's MockTransport stands in for
the service's answers here: these are the client's reactions to status codes, not the service."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from prover.errors import EXIT_ENVIRONMENT, ServiceError
from prover.protocol import ClaimRequest, FailureReason, FailureReport, ProofSubmission
from prover.worker import RetryPolicy, ServiceClient

KEY = "provider-secret-key-1234"
LEASE = {
    "lease_id": "L1",
    "token": "T1",
    "expires_at": "2026-11-30T10:00:00Z",
    "ttl_s": 30.0,
    "attempt": 1,
    "inference": {
        "id": "I1",
        "model_id": "ab" * 32,
        "bundle_digest": "cd" * 32,
        "input": {"input_data": [[0.1, 0.2]]},
    },
}


def _client(
    handler: Callable[[httpx.Request], httpx.Response], attempts: int = 4
) -> tuple[ServiceClient, list[float]]:
    slept: list[float] = []
    client = ServiceClient(
        "http://service.test:8000",
        KEY,
        retry=RetryPolicy(attempts=attempts, sleep=slept.append),
        transport=httpx.MockTransport(handler),
    )
    return client, slept


def test_claim_sends_the_key_and_parses_a_lease_or_nothing() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(200, json=LEASE), httpx.Response(204)]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    client, _ = _client(handler)
    lease = client.claim(ClaimRequest(wait_s=5))
    assert lease is not None and lease.inference.id == "I1"
    assert client.claim(ClaimRequest(wait_s=5)) is None
    assert seen[0].url.path == "/v1/leases"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_lease_calls_go_to_their_lease_and_refuse_an_answer_without_a_body() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(204)

    client, _ = _client(handler)
    calls: list[tuple[str, Callable[[], object]]] = [
        ("renew the lease", lambda: client.renew("L1", "T1")),
        ("submit the proof", lambda: client.submit("L1", ProofSubmission(token="T1", proof={}))),
        (
            "report the failure",
            lambda: client.report_failure(
                "L1", FailureReport(token="T1", reason=FailureReason.INTERNAL, retryable=True)
            ),
        ),
    ]
    for what, call in calls:
        with pytest.raises(ServiceError, match=f"^{what}: the service answered 204"):
            call()
    assert seen == ["/v1/leases/L1/renew", "/v1/leases/L1/proof", "/v1/leases/L1/failure"]


def test_connection_errors_and_5xx_are_retried_with_backoff() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls == 2:
            return httpx.Response(503, json={"title": "Service Unavailable", "status": 503})
        return httpx.Response(200, json={"expires_at": "2026-11-30T10:00:30Z"})

    client, slept = _client(handler)
    client.renew("L1", "T1")
    assert calls == 3
    assert slept == [0.5, 1.0]


def test_giving_up_after_retries_is_an_environment_error_without_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, slept = _client(handler, attempts=3)
    with pytest.raises(ServiceError, match="did not answer after 3 tries") as caught:
        client.claim(ClaimRequest())
    assert caught.value.exit_code == EXIT_ENVIRONMENT and caught.value.status is None
    assert KEY not in str(caught.value) and len(slept) == 2


@pytest.mark.parametrize("status", [401, 403, 409, 410, 422])
def test_a_problem_document_becomes_a_service_error_once(status: int) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            status,
            json={"type": "about:blank", "title": "Refused", "status": status, "detail": "why"},
            headers={"content-type": "application/problem+json"},
        )

    client, slept = _client(handler)
    with pytest.raises(ServiceError) as caught:
        client.report_failure(
            "L1", FailureReport(token="T1", reason=FailureReason.INTERNAL, retryable=True)
        )
    assert calls == 1 and slept == []  # not retried
    assert caught.value.status == status and caught.value.problem["detail"] == "why"
    assert f"answered {status} Refused: why" in str(caught.value)
    assert KEY not in str(caught.value)
    if status in (401, 403):
        assert "ZKINFER_PROVIDER_KEY" in str(caught.value)


def test_an_answer_of_the_wrong_shape_names_the_version_mismatch() -> None:
    client, _ = _client(lambda _: httpx.Response(200, json={"lease": "?"}))
    with pytest.raises(ServiceError, match="not a Lease"):
        client.claim(ClaimRequest())


def test_a_download_from_another_host_never_carries_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x")

    client, _ = _client(handler)
    with client.download("http://mirror.test/pk.key") as response:
        assert response.status_code == 200
    assert seen[0].url.host == "mirror.test" and "authorization" not in seen[0].headers
    with client.download("/v1/bundles/m/files/pk.key", 10) as response:
        assert response.status_code == 200
    assert seen[1].url.host == "service.test"
    assert seen[1].headers["authorization"] == f"Bearer {KEY}"
    assert seen[1].headers["range"] == "bytes=10-"


def test_the_service_url_and_key_are_checked_up_front() -> None:
    with pytest.raises(ServiceError, match="not a service URL"):
        ServiceClient("ftp://x", KEY)
    with pytest.raises(ServiceError, match="ZKINFER_PROVIDER_KEY"):
        ServiceClient("http://127.0.0.1:8000", "")
