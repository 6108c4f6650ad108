"""``zkinfer demo``: the README's first command, end to end, as the user runs it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import MODELS, own_cache, own_home, zkinfer


def test_demo_compiles_proves_verifies_serves_over_http_and_settles_on_chain(
    tmp_path: Path,
) -> None:
    home = {
        "ZKINFER_HOME": str(own_home(tmp_path)),
        "ZKINFER_CACHE_DIR": str(own_cache(tmp_path)),  # the worker's bundle download goes here
    }
    result = zkinfer(
        "demo", "--model", MODELS / "breast_cancer_mlp", "--workdir", tmp_path, "--json", env=home
    )
    assert result.code == 0, result.stderr
    doc = result.json
    assert doc["verify"]["valid"] is True
    assert doc["verify"]["outputs"] == doc["prove"]["outputs"]
    assert doc["compile"]["srs_provenance"] == "dev-unsafe"
    assert doc["label"] in ("malignant", "benign")
    http = doc["http"]  # the same inference over HTTP: zkinfer serve and a worker process
    assert http["status"] == "done" and http["verified"] is True
    assert http["worker"]["status"] == "accepted"
    assert http["outputs"] == doc["verify"]["outputs"]
    chain = doc["chain"]
    assert chain["chain_id"] == 31337 and chain["callback_ran"] is True
    assert chain["outputs"] == doc["verify"]["outputs"][0]
    assert {"deploy_verifier", "register_model", "request", "lock", "fulfill", "withdraw"} <= set(
        chain["transactions"]
    )
    assert chain["transactions"]["fulfill"]["gas_used"] < 16_777_216 // 10
    # the dApp refers the case exactly when the proven malignant logit is the larger one
    assert chain["referred"] == (doc["label"] == "malignant")
    assert zkinfer("devnet", "status", "--json", env=home).json["running"] is False
    again = zkinfer(
        "demo", "--model", MODELS / "breast_cancer_mlp", "--workdir", tmp_path, env=home
    )
    assert again.code == 0 and again.stdout == ""
    for text in ("VALID", "ONNX Runtime output", "compile reused", "dev-unsafe", "fulfill"):
        assert text in again.stderr
    # the service kept the uploaded model in its embedded database: no second compile
    for text in ("over HTTP", "(reused)", "re-verified by the service", "status done"):
        assert text in again.stderr
    # the devnet was stopped and restarted from its saved state: nothing is deployed twice
    assert "reused from the devnet's saved state" in again.stderr


def test_demo_refuses_a_folder_that_is_not_a_reference_model(tmp_path: Path) -> None:
    result = zkinfer("demo", "--model", tmp_path, "--workdir", tmp_path / "w")
    assert result.code == 2
    assert "not a reference model folder" in result.stderr
