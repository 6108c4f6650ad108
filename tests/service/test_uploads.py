"""Model uploads: refused synchronously when malformed (nothing stored), compiled by the queue
worker in a limited child process otherwise."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import onnx
import pytest
from fastapi.testclient import TestClient
from onnx.external_data_helper import set_external_data

from prover.service.compiler import CompileJob
from prover.service.store import Store
from prover.service.tasks import run_compile
from prover.settings import Settings
from tests.helpers import model_files
from tests.helpers.service import CLIENT_A, PROVIDER, auth, count_rows

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _files(
    onnx_bytes: bytes | None = None, sample: bytes | None = None
) -> dict[str, tuple[str, bytes]]:
    network, inp, calibration = model_files("breast_cancer_mlp")
    return {
        "onnx": ("network.onnx", onnx_bytes if onnx_bytes is not None else network.read_bytes()),
        "sample": ("input.json", sample if sample is not None else inp.read_bytes()),
        "calibration": ("calibration.json", calibration.read_bytes()),
    }


def _with_external_data(location: str) -> bytes:
    model = onnx.load(str(model_files("breast_cancer_mlp")[0]))
    tensor = model.graph.initializer[0]
    set_external_data(tensor, location=location)
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    return bytes(model.SerializeToString())


def _uploads(api: TestClient) -> list[Path]:
    settings: Settings = api.app.state.settings  # type: ignore[attr-defined]
    root = settings.service_dir / "uploads"
    return sorted(root.iterdir()) if root.is_dir() else []


@pytest.mark.parametrize(
    ("files", "words"),
    [
        (lambda: _files(onnx_bytes=b"\x08\x01garbage" * 10), "onnx: not a valid ONNX file"),
        (lambda: _files(onnx_bytes=b""), "empty"),
        (lambda: _files(onnx_bytes=_with_external_data("../../secret.bin")), "outside"),
        (lambda: _files(onnx_bytes=_with_external_data("weights.bin")), "external data"),
        (lambda: _files(sample=b'{"input_data": [[1.0], [2.0]]}'), "sample"),
        (lambda: _files(sample=b"not json"), "sample: not valid JSON"),
    ],
)
def test_a_bad_upload_is_refused_with_the_reason_and_nothing_is_stored(
    api: TestClient, pg_url: str, files: object, words: str
) -> None:
    before_models = count_rows(pg_url, "SELECT count(*) FROM models")
    before_uploads = _uploads(api)
    r = api.post("/v1/models", files=files(), headers=auth(CLIENT_A))  # type: ignore[operator]
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"]
    assert "/tmp" not in r.json()["detail"]  # names the form field, not the server's folders
    assert count_rows(pg_url, "SELECT count(*) FROM models") == before_models
    assert _uploads(api) == before_uploads


def test_uploads_need_a_client_key(api: TestClient) -> None:
    assert api.post("/v1/models", files=_files(), headers=auth(PROVIDER)).status_code == 403
    assert api.post("/v1/models", files=_files()).status_code == 401


def test_an_upload_is_compiled_by_the_queue_worker_and_becomes_ready(api: TestClient) -> None:
    r = api.post(
        "/v1/models",
        files=_files(),
        data={"input_visibility": "public", "output_visibility": "public"},
        headers=auth(CLIENT_A),
    )
    assert r.status_code == 202, r.text
    model_id = r.json()["id"]
    assert r.json()["status"] == "compiling"
    assert r.headers["location"] == f"/v1/models/{model_id}"
    give_up = time.monotonic() + 600
    status = "compiling"
    while status == "compiling" and time.monotonic() < give_up:
        time.sleep(2)
        model = api.get(f"/v1/models/{model_id}", headers=auth(CLIENT_A)).json()
        status = model["status"]
    assert status == "ready", model
    assert model["manifest"]["srs"]["provenance"] == "dev-unsafe"
    assert len(model["bundle_digest"]) == 64
    listed = api.get("/v1/models", headers=auth(CLIENT_A)).json()["items"]
    assert model_id in {m["id"] for m in listed}


def test_a_compile_over_its_memory_limit_fails_with_a_reason(
    api: TestClient, tmp_path: Path
) -> None:
    network, inp, calibration = model_files("breast_cancer_mlp")
    store: Store = api.app.state.store  # type: ignore[attr-defined]
    settings = Settings(dev=True, compile_memory_bytes=256 * 1024**2, home=tmp_path)
    job = CompileJob(network, inp, calibration, tmp_path / "bundle", dev_srs=True)
    assert api.portal is not None
    api.portal.call(functools.partial(store.put_model, "m_limited", status="compiling"))
    row = api.portal.call(run_compile, store, settings, "m_limited", job)
    assert row["status"] == "failed" and row["reason"]
    assert not (tmp_path / "bundle").exists()
