"""Real processes for the service and end-to-end tests: ``zkinfer serve`` API processes and queue
workers over one PostgreSQL database, ``zkinfer worker --api`` provers, and an HTTP client for
the requests. Each process writes to a log file that failure messages quote."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from prover.service.models import register_bundle
from prover.service.store import Store
from tests.helpers import REPO
from tests.helpers.service import CLIENT_A, SERVICE_ENV

TERMINAL = frozenset({"done", "failed", "canceled", "expired"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(pg_url: str, home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **SERVICE_ENV,
        "ZKINFER_DATABASE_URL": pg_url,
        "ZKINFER_HOME": str(home),
        "ZKINFER_REFERENCE_MODELS": "0",
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
        **extra,
    }


def log_tail(log: Path, chars: int = 3000) -> str:
    """The end of a process's log, for a failure message."""
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m prover ARGS`` in a process group of its own (so that :func:`stop` reaches its
    children: a queue worker's verifiers, an API's queue worker), output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "prover", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the process group; SIGKILL it if it is still running after ``timeout``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Api:
    """One ``zkinfer serve --no-queue-worker`` process."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop(self.proc, sig)


def start_api(env: dict[str, str], log: Path, port: int | None = None) -> Api:
    port = port or free_port()
    proc = spawn(env, log, "serve", "--port", str(port), "--no-queue-worker")
    api = Api(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}: {log_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{api.url}/readyz", timeout=2).status_code == 200:
                return api
        time.sleep(0.1)
    api.stop()
    raise RuntimeError(f"the API did not get ready: {log_tail(log)}")


@contextlib.contextmanager
def api_process(env: dict[str, str], log: Path, port: int | None = None) -> Iterator[Api]:
    api = start_api(env, log, port)
    try:
        yield api
    finally:
        api.stop()


@contextlib.contextmanager
def queue_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``zkinfer serve --queue-worker``: verifies submitted proofs, reaps, delivers webhooks,
    compiles uploads."""
    proc = spawn(env, log, "serve", "--queue-worker")
    try:
        yield proc
    finally:
        stop(proc)


@dataclass
class Worker:
    """One ``zkinfer worker --api URL --json`` process; its JSON lines, collected as they come."""

    proc: subprocess.Popen[str]
    log: Path
    lines: list[dict[str, Any]] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.lines.append(json.loads(line))

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_stderr(self, marker: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while marker not in self.stderr():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {marker!r} from the worker: {log_tail(self.log)}")
            time.sleep(0.1)

    def wait(self, timeout: float = 120) -> int:
        """The exit code once the worker ends by itself (killed after ``timeout``)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the worker did not exit: {log_tail(self.log)}") from None
        if self._reader is not None:
            self._reader.join(timeout=10)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)


def start_worker(url: str, key: str, home: Path, log: Path, *args: str) -> Worker:
    env = {
        **os.environ,
        "ZKINFER_PROVIDER_KEY": key,
        "ZKINFER_HOME": str(home),
        "ZKINFER_CACHE_DIR": str(home / "cache"),  # each worker downloads its own bundles
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
    }
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prover", "worker", "--api", url, "--json", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    worker = Worker(proc, log)
    worker._reader = threading.Thread(target=worker._read, daemon=True)
    worker._reader.start()
    return worker


@contextlib.contextmanager
def worker_process(url: str, key: str, home: Path, log: Path, *args: str) -> Iterator[Worker]:
    worker = start_worker(url, key, home, log, *args)
    try:
        yield worker
    finally:
        worker.stop(signal.SIGKILL)


def register(pg_url: str, model_id: str, bundle_dir: Path) -> None:
    """Record a compiled bundle as a ready model of the service (what a finished upload does)."""

    async def run() -> None:
        store = Store(pg_url, max_size=1)
        await store.pool.open(wait=True, timeout=30)
        try:
            await register_bundle(store, model_id, bundle_dir)
        finally:
            await store.pool.close()

    asyncio.run(run())


class Client:
    """A dApp backend calling the service."""

    def __init__(self, url: str, key: str = CLIENT_A) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def request(self, model_id: str, inp: dict[str, Any], **headers: str) -> str:
        r = self.http.post(
            "/v1/inferences", json={"model_id": model_id, "input": inp}, headers=headers
        )
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def get(self, inference_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v1/inferences/{inference_id}")
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def wait(self, inference_id: str, statuses: frozenset[str], timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            doc = self.get(inference_id)
            if doc["status"] in statuses:
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"{inference_id} still {doc['status']} after {timeout_s} s")
            time.sleep(0.2)
