"""The app factory: ``create_app(settings, store)`` wires routes, errors, limits and metrics."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import procrastinate
from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prover import __version__
from prover.service.metrics import HTTP_LATENCY
from prover.service.routes import bundles, inferences, leases, models, ops, verify
from prover.service.store import Store
from prover.service.tasks import Queue, make_queue
from prover.service.verifier import Verifier
from prover.settings import Settings

__all__ = ["BodyLimit", "create_app"]


class BodyLimit:
    """Refuse bodies over the limit with 413 before a handler reads them (declared length or
    counted while streaming). Model uploads get their own, larger limit."""

    def __init__(self, app: ASGIApp, *, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"] == "/v1/models"
        limit = self.upload_limit if upload else self.limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, send, limit)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # answer now; the app sees a disconnect and its answer is dropped
                    refused = True
                    await _too_large(scope, send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request body too large",
            "status": 413,
            "detail": f"the body exceeds {limit} bytes",
            "instance": scope["path"],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(
    settings: Settings, store: Store, queue_app: procrastinate.App | None = None
) -> FastAPI:
    """The API over ``store`` (its pool is opened and closed with the app's lifespan); refuses
    settings unsafe for serving (:meth:`Settings.check_for_serving`)."""
    settings.check_for_serving()
    procrastinate_app = queue_app or make_queue(store.conninfo)

    verifier = Verifier(memory_bytes=settings.verify_memory_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.pool.open(wait=True, timeout=30)
        async with procrastinate_app.open_async():
            yield
        verifier.close()
        await store.pool.close()

    from prover.service.deps import reject_nul

    app = FastAPI(
        dependencies=[Depends(reject_nul)],
        title="zkinfer",
        version=__version__,
        summary="Proven ML inference over HTTP, proven by untrusted provers",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.queue = Queue(procrastinate_app)
    app.state.verifier = verifier  # POST /v1/verify; submissions are verified by the queue

    from prover.service.problems import install_problem_handlers

    install_problem_handlers(app)
    for module in (inferences, models, verify, leases, bundles, ops):
        app.include_router(module.router)

    @app.middleware("http")
    async def timing(request, call_next):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        HTTP_LATENCY.labels(
            getattr(route, "path", "unmatched"), request.method, f"{response.status_code // 100}xx"
        ).observe(time.perf_counter() - start)
        return response

    app.add_middleware(
        BodyLimit, limit=settings.max_body_bytes, upload_limit=settings.max_upload_bytes
    )
    return app
