"""The HTTP half of ``make demo``: ``zkinfer serve`` in development mode (its PostgreSQL embedded
under the data directory unless ``ZKINFER_DATABASE_URL`` is set), the model uploaded through the
API and compiled by the service, one request posted by a client and proven by a separate
``zkinfer worker --api`` process; the service re-verifies the proof before it answers ``done``.

Everything runs as the real programs (subprocesses speaking HTTP); the upload is remembered in the
work folder, so a second run reuses the compiled model and the worker's cached bundle.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from prover.core.progress import NullProgress, Progress, StepTimer
from prover.errors import ServiceError
from prover.settings import DEV_CLIENT_KEY, DEV_PROVIDER_KEY

__all__ = ["dev_service", "run_http_demo"]

_TERMINAL = frozenset({"done", "failed", "canceled", "expired"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", **extra}


@contextlib.contextmanager
def dev_service(workdir: Path, **env: str) -> Iterator[str]:
    """``zkinfer serve --dev --dev-srs`` on a free port until the block ends; its URL. ``env``
    adds environment variables (``ZKINFER_DATABASE_URL``, ``ZKINFER_HOME``, ...)."""
    port = _free_port()
    log = workdir / "service.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prover", "serve", "--dev", "--dev-srs", "--port", str(port)],
            env=_env(ZKINFER_REFERENCE_MODELS="0", **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise ServiceError(f"zkinfer serve exited with {proc.returncode}; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise ServiceError(f"zkinfer serve did not get ready in 120 s; see {log}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # stops its queue worker and embedded database
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _checked(r: httpx.Response, what: str) -> dict[str, Any]:
    if r.is_error:
        raise ServiceError(f"{what}: the service answered {r.status_code}: {r.text[:500]}")
    doc: dict[str, Any] = r.json()
    return doc


def _model(api: httpx.Client, model_dir: Path, workdir: Path) -> tuple[str, bool]:
    """The service's model for ``model_dir``: the one uploaded earlier if still ready, else a
    fresh upload, compiled by the service. Returns the id and whether it was reused."""
    remembered = workdir / "service-model.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        model_id = str(json.loads(remembered.read_text())["model_id"])
        if api.get(f"/v1/models/{model_id}").json().get("status") == "ready":
            return model_id, True
    files = {
        "onnx": (model_dir / "network.onnx").read_bytes(),
        "sample": (model_dir / "input.json").read_bytes(),
    }
    if (model_dir / "calibration.json").is_file():
        files["calibration"] = (model_dir / "calibration.json").read_bytes()
    model_id = str(_checked(api.post("/v1/models", files=files), "upload the model")["id"])
    deadline = time.monotonic() + 600
    while True:
        model = _checked(api.get(f"/v1/models/{model_id}"), "read the model")
        if model["status"] == "ready":
            break
        if model["status"] == "failed" or time.monotonic() > deadline:
            raise ServiceError(f"the service could not compile the model: {model.get('reason')}")
        time.sleep(0.5)
    remembered.write_text(json.dumps({"model_id": model_id}))
    return model_id, False


def run_http_demo(
    model_dir: Path, workdir: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Serve, upload, request, prove with a worker process, and return the verified result."""
    timer = StepTimer(progress or NullProgress())
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        with timer.step("start service", "zkinfer serve --dev, embedded PostgreSQL"):
            url = stack.enter_context(dev_service(workdir))
        api = stack.enter_context(
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {DEV_CLIENT_KEY}"}, timeout=30
            )
        )
        with timer.step("model over HTTP", "POST /v1/models, compiled by the service"):
            model_id, reused = _model(api, model_dir, workdir)
        sample = json.loads((model_dir / "input.json").read_text())
        with timer.step("request", "POST /v1/inferences"):
            created = _checked(
                api.post(
                    "/v1/inferences",
                    json={"model_id": model_id, "input": {"input_data": sample["input_data"]}},
                ),
                "request the inference",
            )
        inference_id = str(created["id"])
        with timer.step("worker proves", "zkinfer worker --api --once"):
            with (workdir / "worker.log").open("ab") as err:
                worker = subprocess.run(
                    [sys.executable, "-m", "prover", "worker", "--api", url, "--once", "--json"],
                    env=_env(ZKINFER_PROVIDER_KEY=DEV_PROVIDER_KEY),
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    timeout=900,
                    check=False,
                )
            lines = [json.loads(line) for line in worker.stdout.splitlines() if line.strip()]
            if worker.returncode != 0 or not lines:
                raise ServiceError(f"the worker failed (exit {worker.returncode}); see worker.log")
        with timer.step("verified result", "GET /v1/inferences/{id}"):
            deadline = time.monotonic() + 120
            while True:
                result = _checked(api.get(f"/v1/inferences/{inference_id}"), "read the result")
                if result["status"] in _TERMINAL or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
    return {
        "url": url,
        "model_id": model_id,
        "model_reused": reused,
        "inference_id": inference_id,
        "status": result["status"],
        "verified": result.get("verified"),
        "outputs": result.get("outputs"),
        "provider": result.get("provider"),
        "worker": lines[0],
        "timings": timer.timings,
    }
