"""The HTTP client of the lease protocol (:mod:`prover.protocol`), as an untrusted prover uses it.

One method per endpoint. Connection errors and 5xx answers are retried with exponential backoff;
any other error answer is mapped once to :class:`~prover.errors.ServiceError` carrying the HTTP
status and the service's problem document. The provider key travels only in the ``Authorization``
header and only to the service's own origin (a listed download on another host, such as a
mirror, is fetched without it); it never appears in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from prover.errors import ServiceError
from prover.protocol import (
    MAX_CLAIM_WAIT_S,
    BundleListing,
    ClaimRequest,
    FailureReport,
    Lease,
    LeaseClosed,
    LeaseRenewed,
    LeaseToken,
    ProofSubmission,
    SubmissionVerdict,
)

__all__ = ["RetryPolicy", "ServiceClient"]

T = TypeVar("T", bound=BaseModel)
#: Answers worth trying again: the service or a proxy in front of it is briefly unavailable.
_RETRY_STATUS = frozenset({500, 502, 503, 504})


class RetryPolicy:
    """How often and how patiently a request is retried after a connection error or a 5xx."""

    def __init__(
        self,
        attempts: int = 6,
        first_delay_s: float = 0.5,
        max_delay_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.attempts = attempts
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.sleep = sleep

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** (attempt - 1)))


def _problem_message(what: str, response: httpx.Response) -> ServiceError:
    problem: dict[str, Any] = {}
    try:
        doc = response.json()
        if isinstance(doc, dict):
            problem = doc
    except ValueError:
        pass
    title = str(problem.get("title") or response.reason_phrase or "error")
    detail = problem.get("detail")
    text = f"{what}: the service answered {response.status_code} {title}"
    if detail:
        text += f": {str(detail)[:500]}"
    if response.status_code in (401, 403):
        text += (
            "; check that ZKINFER_PROVIDER_KEY holds a provider key the service accepts "
            "(one of its ZKINFER_PROVIDER_KEYS)"
        )
    return ServiceError(text, status=response.status_code, problem=problem)


class ServiceClient:
    """A provider's connection to one zkinfer service (``base_url`` such as ``http://host:8000``)."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ServiceError(
                f"{base_url!r} is not a service URL; pass one like http://127.0.0.1:8000"
            )
        if not key:
            raise ServiceError(
                "no provider key: set ZKINFER_PROVIDER_KEY to a key the service lists in its "
                "ZKINFER_PROVIDER_KEYS"
            )
        self.base_url = url.copy_with(path=url.path.rstrip("/") + "/", query=None, fragment=None)
        self.retry = retry or RetryPolicy()
        self._timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "zkinfer-worker"},
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------

    def _url(self, path: str) -> httpx.URL:
        """An endpoint of the service, or a listed file's URL (which may be absolute)."""
        return self.base_url.join(
            path if path.startswith(("http://", "https://")) else path.lstrip("/")
        )

    def _same_origin(self, url: httpx.URL) -> bool:
        base = self.base_url
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)

    def _send(self, what: str, build: Callable[[], httpx.Request], stream: bool) -> httpx.Response:
        """Send with retries on connection errors and 5xx; raise ServiceError on any other error."""
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                response = self._http.send(build(), stream=stream)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {str(exc)[:200] or 'no answer'}"
            else:
                if response.status_code not in _RETRY_STATUS:
                    if response.is_success:
                        return response
                    if stream:
                        response.read()
                    raise _problem_message(what, response)
                if stream:
                    response.read()
                last = f"{response.status_code} {response.reason_phrase}"
                response.close()
            if attempt < self.retry.attempts:
                self.retry.sleep(self.retry.delay(attempt))
        raise ServiceError(
            f"{what}: the service at {self.base_url.host} did not answer after "
            f"{self.retry.attempts} tries ({last})"
        )

    def _post(
        self, what: str, path: str, body: BaseModel, answer: type[T], timeout_s: float | None = None
    ) -> tuple[int, T | None]:
        url = self._url(path)
        payload = body.model_dump(mode="json")
        timeout = httpx.Timeout(timeout_s or self._timeout_s)
        response = self._send(
            what,
            lambda: self._http.build_request("POST", url, json=payload, timeout=timeout),
            stream=False,
        )
        if response.status_code == 204:
            return 204, None
        return response.status_code, self._parse(what, response, answer)

    @staticmethod
    def _parse(what: str, response: httpx.Response, answer: type[T]) -> T:
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as exc:
            raise ServiceError(
                f"{what}: the service's answer is not a {answer.__name__} "
                f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']}); is the worker "
                "the same zkinfer version as the service?",
                status=response.status_code,
            ) from None

    # -- endpoints ----------------------------------------------------------------------------

    def claim(self, request: ClaimRequest) -> Lease | None:
        """Long-poll for work: a lease, or ``None`` when nothing was queued within ``wait_s``."""
        timeout = min(request.wait_s, MAX_CLAIM_WAIT_S) + self._timeout_s
        _, lease = self._post("claim work", "v1/leases", request, Lease, timeout)
        return lease

    def _lease_call(
        self, what: str, lease_id: str, action: str, body: BaseModel, answer: type[T]
    ) -> T:
        """POST ``body`` to the lease's ``action`` endpoint; only an answer with a body is one."""
        _, doc = self._post(what, f"v1/leases/{lease_id}/{action}", body, answer)
        if doc is None:
            raise ServiceError(f"{what}: the service answered 204 without a body")
        return doc

    def renew(self, lease_id: str, token: str) -> LeaseRenewed:
        """Extend the lease; ServiceError 409 (lost) or 410 (canceled or expired) ends it."""
        return self._lease_call(
            "renew the lease", lease_id, "renew", LeaseToken(token=token), LeaseRenewed
        )

    def submit(self, lease_id: str, submission: ProofSubmission) -> SubmissionVerdict:
        """Submit the proof; the verdict's ``accepted`` is None while the service verifies."""
        return self._lease_call(
            "submit the proof", lease_id, "proof", submission, SubmissionVerdict
        )

    def report_failure(self, lease_id: str, report: FailureReport) -> LeaseClosed:
        """Give the lease back with the reason the proof could not be made."""
        return self._lease_call("report the failure", lease_id, "failure", report, LeaseClosed)

    def bundle_listing(self, model_id: str) -> BundleListing:
        """The files of a model's bundle with their sizes and SHA-256 digests."""
        what = f"list the bundle of model {model_id[:16]}"
        url = self._url(f"v1/bundles/{model_id}")
        response = self._send(what, lambda: self._http.build_request("GET", url), stream=False)
        return self._parse(what, response, BundleListing)

    @contextmanager
    def download(self, url: str, start: int = 0) -> Iterator[httpx.Response]:
        """Stream a listed file from byte ``start`` on (HTTP Range): 206 resumes, 200 restarts,
        416 means there is nothing after ``start``. Its bytes are trusted only after their
        SHA-256 matched the listing."""
        target = self._url(url)
        headers = {"Range": f"bytes={start}-"} if start else {}
        what = f"download {target.path}"
        keyed = self._same_origin(target)

        def build() -> httpx.Request:
            request = self._http.build_request("GET", target, headers=headers)
            if not keyed:  # a mirror of the content-addressed files never sees the key
                del request.headers["Authorization"]
            return request

        try:
            response = self._send(what, build, stream=True)
        except ServiceError as exc:
            if exc.status != 416:
                raise
            response = httpx.Response(416)
        try:
            yield response
        finally:
            response.close()
