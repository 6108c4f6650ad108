"""Errors as RFC 9457 problem documents, mapped from the store, the state machine and the core
in one place."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from prover.errors import ArtifactError, InputError, ModelError, UsageError, ZkinferError
from prover.service.leases import IllegalTransition, LeaseLost, RequestGone
from prover.service.store import (
    CreatesBusy,
    IdempotencyConflict,
    QueueFull,
    UnknownCursor,
    UnknownId,
)
from prover.service.webhooks import WebhookUrlError
from prover.settings import env_name

__all__ = [
    "CREATES_BUSY_RETRY_AFTER_S",
    "QUEUE_FULL_RESPONSE",
    "QUEUE_FULL_RETRY_AFTER_S",
    "ApiProblem",
    "install_problem_handlers",
    "problem_response",
]

MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """An error the API answers with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.headers = headers
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.url.path
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


#: Retry-After of a 429 for a full queue: a hint only (when a prover finishes one of the client's
#: requests is not known), so that a client at its limit does not try again in a tight loop.
QUEUE_FULL_RETRY_AFTER_S = 10
#: Retry-After of a 429 for too many concurrent creates of one key (their turns last milliseconds).
CREATES_BUSY_RETRY_AFTER_S = 1

#: The OpenAPI entry of that 429 (on createInference).
QUEUE_FULL_RESPONSE: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "the client key already has ZKINFER_MAX_QUEUED_PER_CLIENT open requests "
        "(queued, proving or verifying, deadline not passed): try again once some have finished "
        "(a problem document, title `Too many queued requests`; `limit` is the limit); or too "
        "many creates of this key at once (title `Too many concurrent creates`): they take "
        "turns, send them one after another",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before trying again (a hint)",
                "schema": {"type": "integer"},
            }
        },
        "content": {
            "application/problem+json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "limit": {"type": "integer"},
                    },
                }
            }
        },
    }
}

#: (status, title) for the errors raised below the routes.
_MAPPED: list[tuple[type[Exception], int, str]] = [
    (RequestGone, 410, "Request gone"),
    (LeaseLost, 409, "Lease lost"),
    (IllegalTransition, 409, "Conflict"),
    (UnknownId, 404, "Not found"),
    (IdempotencyConflict, 422, "Idempotency-Key reused"),
    (UnknownCursor, 422, "Unknown page cursor"),
    (WebhookUrlError, 422, "Invalid webhook URL"),
    (InputError, 422, "Invalid input"),
    (ModelError, 422, "Invalid model"),
    (UsageError, 400, "Bad request"),
    (ArtifactError, 503, "Model artifacts unavailable"),
    (ZkinferError, 500, "Internal error"),
]


def _where(exc: Exception) -> dict[str, Any]:
    """A core error's ``field`` and ``hint`` (fields named as such, never as CLI flags), and its
    field in ``errors`` as a validation problem has it, so clients read both the same way."""
    extra: dict[str, Any] = {}
    if isinstance(exc, ZkinferError):
        if exc.field is not None:
            extra["field"] = exc.field
            extra["errors"] = [{"field": exc.field, "message": exc.message}]
        if exc.hint is not None:
            extra["hint"] = exc.hint
    return extra


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app can answer becomes ``application/problem+json``."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(
            request, exc.status, exc.title, exc.detail, exc.headers, **exc.extra
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, str(exc.detail), headers=headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(request, 422, "Invalid request body", detail, errors=errors)

    def mapped(status: int, title: str) -> Any:
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return problem_response(request, status, title, str(exc), **_where(exc))

        return handler

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)

    async def on_data_error(request: Request, exc: Exception) -> JSONResponse:
        # a value PostgreSQL cannot store (a fallback: NUL characters are refused before this)
        return problem_response(
            request, 422, "Invalid data", "a value in the request cannot be stored; check its text"
        )

    app.add_exception_handler(psycopg.DataError, on_data_error)

    async def on_queue_full(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, QueueFull)
        setting = env_name("max_queued_per_client")
        return problem_response(
            request,
            429,
            "Too many queued requests",
            f"this client key already has {exc.limit} open requests (queued, proving or "
            f"verifying, deadline not passed), the most the service takes ({setting}): try "
            "again once some of them have finished (GET /v1/inferences?status=queued, "
            "?status=proving and ?status=verifying list them; canceling one makes room too), "
            f"or ask the service's operator to raise {setting}",
            {"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
            limit=exc.limit,
        )

    async def on_creates_busy(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            request,
            429,
            "Too many concurrent creates",
            str(exc),
            {"Retry-After": str(CREATES_BUSY_RETRY_AFTER_S)},
        )

    app.add_exception_handler(QueueFull, on_queue_full)
    app.add_exception_handler(CreatesBusy, on_creates_busy)
    for exc_type, status, title in _MAPPED:
        app.add_exception_handler(exc_type, mapped(status, title))
