"""``zkinfer demo``: the README's first command, end to end, as the user runs it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import MODELS, zkinfer


def test_demo_compiles_proves_and_verifies_a_reference_model(tmp_path: Path) -> None:
    result = zkinfer(
        "demo", "--model", MODELS / "breast_cancer_mlp", "--workdir", tmp_path, "--json"
    )
    assert result.code == 0, result.stderr
    doc = result.json
    assert doc["verify"]["valid"] is True
    assert doc["verify"]["outputs"] == doc["prove"]["outputs"]
    assert doc["compile"]["srs_provenance"] == "dev-unsafe"
    assert doc["label"] in ("malignant", "benign")
    again = zkinfer("demo", "--model", MODELS / "breast_cancer_mlp", "--workdir", tmp_path)
    assert again.code == 0 and again.stdout == ""
    for text in ("VALID", "ONNX Runtime output", "compile reused", "dev-unsafe"):
        assert text in again.stderr


def test_demo_refuses_a_folder_that_is_not_a_reference_model(tmp_path: Path) -> None:
    result = zkinfer("demo", "--model", tmp_path, "--workdir", tmp_path / "w")
    assert result.code == 2
    assert "not a reference model folder" in result.stderr
