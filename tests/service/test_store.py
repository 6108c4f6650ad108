"""The store and the verification job without HTTP: concurrent claims, and a verifier that
cannot reach a verdict."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prover.service.models import register_bundle
from prover.service.store import Store
from prover.service.tasks import run_verification
from prover.service.verifier import VerifierUnavailable
from prover.settings import Settings
from tests.conftest import Compiled

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC)
TTL = timedelta(seconds=60)


async def _queue_requests(
    store: Store, model_id: str, n: int, values: list[list[float]]
) -> list[str]:
    ids = []
    for _ in range(n):
        row, _ = await store.create_inference(
            owner="client",
            model_id=model_id,
            bundle_digest="d" * 64,
            values=values,
            deadline=NOW + timedelta(hours=1),
            webhook_url=None,
            idempotency_key=None,
            request_hash="h",
        )
        ids.append(row["id"])
    return ids


def test_concurrent_claims_never_hand_out_one_request_twice(pg_url: str) -> None:
    async def scenario() -> tuple[list[str], list[str | None]]:
        store = Store(pg_url, max_size=12)
        await store.pool.open()
        try:
            model_id = f"claims-{uuid.uuid4().hex[:8]}"
            await store.put_model(model_id, status="ready", bundle_digest="d" * 64, manifest={})
            ids = await _queue_requests(store, model_id, 6, [[1.0]])
            claims = await asyncio.gather(
                *(
                    store.claim(
                        f"provider-{i}",
                        worker="",
                        models=[model_id],
                        ttl=TTL,
                        now=datetime.now(UTC),
                        max_attempts=3,
                    )
                    for i in range(12)
                )
            )
            return ids, [None if c is None else c.row["id"] for c in claims]
        finally:
            await store.pool.close()

    ids, got = asyncio.run(scenario())
    leased = [g for g in got if g is not None]
    assert sorted(leased) == sorted(ids)  # each request leased exactly once
    assert got.count(None) == 6


def test_a_verifier_that_cannot_decide_is_not_the_providers_fault(
    pg_url: str, mlp: Compiled, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(mlp.bundle.root, bundle)
    values = json.loads(mlp.sample.read_text())["input_data"]
    proof = json.loads(mlp.proof.read_text())
    settings = Settings(dev=True, home=tmp_path, max_attempts=3)

    async def scenario() -> None:
        store = Store(pg_url, max_size=4)
        await store.pool.open()
        try:
            model_id = f"crash-{uuid.uuid4().hex[:8]}"
            await register_bundle(store, model_id, bundle)
            (inference_id,) = await _queue_requests(store, model_id, 1, values)
            claimed = await store.claim(
                "honest", worker="", models=[model_id], ttl=TTL, now=NOW, max_attempts=3
            )
            assert claimed is not None and claimed.row["id"] == inference_id
            await store.submit(
                "honest", claimed.lease_id, claimed.token, proof=proof, prove_s=None, now=NOW
            )
            key = (bundle / "vk.key").read_bytes()
            (bundle / "vk.key").write_bytes(key[:-1] + bytes([key[-1] ^ 1]))
            with pytest.raises(VerifierUnavailable, match="digest mismatch"):
                await run_verification(store, settings, claimed.lease_id)
            assert await store.verdict(claimed.lease_id) == ("submitted", None)
            assert (await store.get_inference(inference_id))["status"] == "verifying"
            assert (await store.provider("honest"))["rejected"] == 0

            (bundle / "vk.key").write_bytes(key)  # the service repaired: the job's retry decides
            (row,) = await run_verification(store, settings, claimed.lease_id)
            assert row["status"] == "done"
            assert await run_verification(store, settings, claimed.lease_id) == []  # once
        finally:
            await store.pool.close()

    asyncio.run(scenario())
