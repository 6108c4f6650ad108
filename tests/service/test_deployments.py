"""Where a model is deployed, as ``GET /v1/models`` shows it: what ``zkinfer deploy`` recorded
for the service's chain in the service's data directory, on a real anvil node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from prover.chain.abi_types import MARKET
from prover.chain.contracts import load_artifact, verifier_artifact
from prover.chain.keys import PRIVATE_KEY_ENV
from prover.core.bundle import VERIFIER_JSON
from prover.service.app import create_app
from prover.service.store import Store
from prover.settings import Settings
from tests.conftest import Compiled
from tests.helpers import own_home, zkinfer
from tests.helpers.chain import KEYS, OWNER, Anvil
from tests.helpers.service import SERVICE_ENV
from tests.service.conftest import get_ok, register

pytestmark = [pytest.mark.postgres, pytest.mark.anvil, pytest.mark.slow]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return own_home(tmp_path)


def _service(pg_url: str, home: Path, chain_id: int | None) -> TestClient:
    settings = Settings(
        home=home,
        chain_id=chain_id,
        api_keys=SERVICE_ENV["ZKINFER_API_KEYS"].split(","),  # type: ignore[arg-type]
        provider_keys=SERVICE_ENV["ZKINFER_PROVIDER_KEYS"].split(","),  # type: ignore[arg-type]
        reference_models=False,
    )
    return TestClient(create_app(settings, Store(pg_url, max_size=2)))


@pytest.fixture
def service(pg_url: str, home: Path, anvil: Anvil) -> Iterator[TestClient]:
    """An API serving the anvil node's chain, with its data directory at ``home``."""
    with _service(pg_url, home, anvil.chain_id) as client:
        yield client


def _deploy(anvil: Anvil, compiled: Compiled, home: Path) -> dict[str, Any]:
    env = {PRIVATE_KEY_ENV: KEYS[OWNER], "ZKINFER_HOME": str(home)}
    result = zkinfer("deploy", compiled.bundle.root, "--rpc-url", anvil.url, "--json", env=env)
    assert result.code == 0, result.stdout + result.stderr
    return result.json


def _model(client: TestClient, model_id: str) -> dict[str, Any]:
    return get_ok(client, f"/v1/models/{model_id}")


def test_a_deployed_model_shows_its_verifier_and_market_on_the_services_chain(
    service: TestClient, anvil: Anvil, tiny: Compiled, home: Path
) -> None:
    model_id = register(service, tiny)
    before = _model(service, model_id)
    assert before["chain_id"] == anvil.chain_id
    assert (before["verifier_address"], before["market_address"]) == (None, None)

    deployed = _deploy(anvil, tiny, home)
    shown = _model(service, model_id)
    assert shown["verifier_address"] == deployed["verifier"]
    assert shown["market_address"] == deployed["market"]
    listed = get_ok(service, "/v1/models")["items"]
    assert [m for m in listed if m["id"] == model_id] == [shown]

    chain = anvil.client(None)
    verifier_code = verifier_artifact(tiny.bundle.path(VERIFIER_JSON)).runtime_code_hash
    assert chain.code_hash(shown["verifier_address"]) == verifier_code
    assert chain.code_hash(shown["market_address"]) == load_artifact(MARKET).runtime_code_hash


def test_deployments_on_another_chain_or_without_a_chain_are_not_shown(
    pg_url: str, anvil: Anvil, tiny: Compiled, home: Path
) -> None:
    _deploy(anvil, tiny, home)
    for chain_id in (anvil.chain_id + 1, None):
        with _service(pg_url, home, chain_id) as other:
            shown = _model(other, register(other, tiny))
        assert shown["chain_id"] == chain_id
        assert (shown["verifier_address"], shown["market_address"]) == (None, None)
