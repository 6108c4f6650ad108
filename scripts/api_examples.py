"""Capture real requests and responses of every endpoint for docs/api.md.

Runs the real app over a real PostgreSQL database (created and dropped here) with a real queue
worker process, registers a compiled bundle, and walks a request through its life with a real
proof. Prints Markdown on stdout.

    python scripts/api_examples.py [--bundle BUNDLE --proof PROOF.json]

Without ``--bundle`` the breast-cancer MLP is compiled (dev SRS) and its sample proven first.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fastapi.testclient import TestClient

from prover.service.app import create_app
from prover.service.db import migrate
from prover.service.models import register_bundle
from prover.service.store import Store
from prover.settings import Settings

CLIENT = "client-key-0123456789abcdef"
PROVIDER = "provider-key-0123456789abcdef"
MAX_FIELD = 160
MODEL = Path(__file__).resolve().parents[1] / "models" / "breast_cancer_mlp"


def _short(value: Any) -> Any:
    """Long values (proofs, calldata, manifests) cut for reading."""
    if isinstance(value, str) and len(value) > MAX_FIELD:
        return value[:60] + f"...({len(value)} chars)"
    if isinstance(value, list) and len(value) > 6:
        return [*(_short(v) for v in value[:3]), f"...({len(value)} items)"]
    if isinstance(value, dict):
        return {k: _short(_manifest(v) if k == "manifest" else v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short(v) for v in value]
    return value


def _manifest(manifest: Any) -> Any:
    """The manifest's headline fields (the rest is the bundle's manifest.json)."""
    if not isinstance(manifest, dict):
        return manifest
    keep = ("format", "model_id", "ezkl_version", "visibility", "instances", "proof_bytes")
    return {**{k: manifest[k] for k in keep if k in manifest}, "...": "(the full manifest.json)"}


def show(title: str, method: str, path: str, r: httpx.Response, body: Any = None) -> None:
    print(f"### {title}\n\n```http\n{method} {path}")
    if body is not None:
        print("Content-Type: application/json\n")
        print(json.dumps(_short(body), indent=2))
    print("```\n\n```http")
    print(f"HTTP/1.1 {r.status_code} {r.reason_phrase}")
    for h in ("location", "content-type", "content-range"):
        if h in r.headers:
            print(f"{h}: {r.headers[h]}")
    if r.content and r.headers.get("content-type", "").endswith("json"):
        print("\n" + json.dumps(_short(r.json()), indent=2))
    elif r.content:
        print(f"\n<{len(r.content)} bytes>")
    print("```\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--proof", type=Path)
    ap.add_argument("--input", type=Path, default=MODEL / "input.json")
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    prove_s = None
    if args.bundle is None or args.proof is None:
        from prover import CompileOptions, compile_model, prove

        work = Path(tempfile.mkdtemp(prefix="zkinfer-examples-"))
        args.bundle, args.proof = work / "bundle", work / "proof.json"
        compile_model(
            MODEL / "network.onnx",
            args.input,
            args.bundle,
            calibration=MODEL / "calibration.json",
            options=CompileOptions(dev_srs=True),
        )
        started = time.perf_counter()
        prove(args.bundle, args.input, args.proof)
        prove_s = round(time.perf_counter() - started, 2)
    name = f"zkinfer_examples_{secrets.token_hex(4)}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    env = {
        **os.environ,
        "ZKINFER_DATABASE_URL": url,
        "ZKINFER_API_KEYS": CLIENT,
        "ZKINFER_PROVIDER_KEYS": PROVIDER,
    }
    worker = None
    try:
        migrate(url)
        worker = subprocess.Popen(
            [sys.executable, "-m", "prover", "serve", "--queue-worker"],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        settings = Settings(api_keys=CLIENT, provider_keys=PROVIDER)  # type: ignore[arg-type]
        proof = json.loads(args.proof.read_text())
        inp = json.loads(args.input.read_text())
        c = {"Authorization": f"Bearer {CLIENT}"}
        p = {"Authorization": f"Bearer {PROVIDER}"}
        with TestClient(create_app(settings, Store(url))) as api:
            assert api.portal is not None
            store: Store = api.app.state.store  # type: ignore[attr-defined]
            api.portal.call(register_bundle, store, "breast_cancer_mlp", args.bundle)
            show("List models", "GET", "/v1/models", api.get("/v1/models", headers=c))
            body = {"model_id": "breast_cancer_mlp", "input": inp}
            r = api.post("/v1/inferences", json=body, headers={**c, "Idempotency-Key": "order-1"})
            show("Request a proven inference", "POST", "/v1/inferences", r, body)
            iid = r.json()["id"]
            show(
                "Its status",
                "GET",
                f"/v1/inferences/{iid}",
                api.get(f"/v1/inferences/{iid}", headers=c),
            )
            claim = {"models": ["breast_cancer_mlp"], "wait_s": 5, "worker": "gpu-1"}
            r = api.post("/v1/leases", json=claim, headers=p)
            show("A provider claims work", "POST", "/v1/leases", r, claim)
            lease = r.json()
            lid = lease["lease_id"]
            tok = {"token": lease["token"]}
            r = api.post(f"/v1/leases/{lid}/renew", json=tok, headers=p)
            show("Renew the lease", "POST", f"/v1/leases/{lid}/renew", r, tok)
            r = api.get("/v1/bundles/breast_cancer_mlp", headers=p)
            show("Bundle listing", "GET", "/v1/bundles/breast_cancer_mlp", r)
            path = "/v1/bundles/breast_cancer_mlp/files/vk.key"
            r = api.get(path, headers={**p, "Range": "bytes=0-1023"})
            show("Resume a download (Range)", "GET", path + "  (Range: bytes=0-1023)", r)
            sub = {"token": lease["token"], "proof": proof, "prove_s": prove_s}
            r = api.post(f"/v1/leases/{lid}/proof", json=sub, headers=p)
            show("Submit the proof", "POST", f"/v1/leases/{lid}/proof", r, sub)
            show(
                "The verified result",
                "GET",
                f"/v1/inferences/{iid}",
                api.get(f"/v1/inferences/{iid}", headers=c),
            )
            r = api.get("/v1/inferences?model_id=breast_cancer_mlp&status=done&limit=10", headers=c)
            show(
                "List requests",
                "GET",
                "/v1/inferences?model_id=breast_cancer_mlp&status=done&limit=10",
                r,
            )
            r2 = api.post("/v1/inferences", json=body, headers=c)
            r = api.post(f"/v1/inferences/{r2.json()['id']}/cancel", headers=c)
            show("Cancel", "POST", f"/v1/inferences/{r2.json()['id']}/cancel", r)
            r3 = api.post("/v1/inferences", json=body, headers=c)
            lease = api.post("/v1/leases", json=claim, headers=p).json()
            fail = {
                "token": lease["token"],
                "reason": "out_of_memory",
                "retryable": True,
                "detail": "8 GiB GPU",
            }
            r = api.post(f"/v1/leases/{lease['lease_id']}/failure", json=fail, headers=p)
            show("Report a failure", "POST", f"/v1/leases/{lease['lease_id']}/failure", r, fail)
            api.post(f"/v1/inferences/{r3.json()['id']}/cancel", headers=c)
            vbody = {"model_id": "breast_cancer_mlp", "proof": proof, "input": inp}
            show(
                "Verify a proof",
                "POST",
                "/v1/verify",
                api.post("/v1/verify", json=vbody, headers=c),
                vbody,
            )
            bad = {"model_id": "breast_cancer_mlp", "input": {"input_data": [[float("nan")] * 30]}}
            r = api.post(
                "/v1/inferences",
                content=json.dumps(bad),
                headers={**c, "content-type": "application/json"},
            )
            show(
                "A bad input",
                "POST",
                "/v1/inferences",
                r,
                {"model_id": "breast_cancer_mlp", "input": {"input_data": [["NaN", "..."]]}},
            )
            show(
                "A client key on a provider route",
                "POST",
                "/v1/leases",
                api.post("/v1/leases", json={}, headers=c),
                {},
            )
            files = {
                "onnx": ("network.onnx", (MODEL / "network.onnx").read_bytes()),
                "sample": ("input.json", args.input.read_bytes()),
                "calibration": ("calibration.json", (MODEL / "calibration.json").read_bytes()),
            }
            form = {"input_visibility": "public", "output_visibility": "public"}
            r = api.post("/v1/models", files=files, data=form, headers=c)
            print("### Upload a model\n\n```http\nPOST /v1/models")
            print("Content-Type: multipart/form-data; boundary=...\n")
            print("onnx=@network.onnx  sample=@input.json  calibration=@calibration.json")
            print("input_visibility=public  output_visibility=public\n```\n")
            print(f"```http\nHTTP/1.1 {r.status_code} {r.reason_phrase}")
            print(f"location: {r.headers['location']}\n\n{json.dumps(r.json(), indent=2)}\n```\n")
            mid = r.json()["id"]
            show(
                "A model being compiled",
                "GET",
                f"/v1/models/{mid}",
                api.get(f"/v1/models/{mid}", headers=c),
            )
            show("Readiness", "GET", "/readyz", api.get("/readyz"))
            metrics = api.get("/metrics").text.splitlines()
            print(
                "### Metrics (excerpt)\n\n```\n"
                + "\n".join(
                    line
                    for line in metrics
                    if line.startswith(("zkinfer_requests", "zkinfer_proofs", "zkinfer_active"))
                )
                + "\n```"
            )
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:  # still compiling the uploaded model
                worker.kill()
                worker.wait()
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
