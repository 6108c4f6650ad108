"""Hashed visibility, attacked like the public mode: the hash binds the input (or output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prover import CompileOptions, compile_model, prove, verify
from prover.core.fields import felt_from_hex, felt_to_hex
from tests.conftest import Compiled
from tests.helpers import model_files, resync_hex_proof, write_json, zkinfer


def _doc(c: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(c.proof.read_text())
    return doc


@pytest.mark.parametrize("where", [0.0, 0.01, 0.25, 0.5, 0.75, 1.0])
def test_flipped_byte_in_hashed_input_proof_is_invalid(
    mlp_hashed: Compiled, tmp_path: Path, where: float
) -> None:
    doc = _doc(mlp_hashed)
    doc["proof"][round(where * (len(doc["proof"]) - 1))] ^= 0x80
    resync_hex_proof(doc)
    assert not verify(write_json(tmp_path / "p.json", doc), mlp_hashed.bundle.root).valid


@pytest.mark.parametrize("index", [0, 1, 2])
def test_changed_hash_or_output_instance_is_invalid(
    mlp_hashed: Compiled, tmp_path: Path, index: int
) -> None:
    doc = _doc(mlp_hashed)
    felts = doc["instances"][0]
    felts[index] = felt_to_hex(felt_from_hex(felts[index]) + 1)
    assert not verify(write_json(tmp_path / "p.json", doc), mlp_hashed.bundle.root).valid


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_mutation_of_a_hashed_input_proof_verifies(
    mlp_hashed: Compiled, tmp_path: Path, data: st.DataObject
) -> None:
    doc = _doc(mlp_hashed)
    if data.draw(st.booleans(), label="mutate instances"):
        felts = doc["instances"][0]
        i = data.draw(st.integers(0, len(felts) - 1), label="instance")
        felts[i] = felt_to_hex(felt_from_hex(felts[i]) + data.draw(st.integers(1, 2**64)))
    else:
        i = data.draw(st.integers(0, len(doc["proof"]) - 1), label="byte")
        doc["proof"][i] ^= data.draw(st.integers(1, 255), label="mask")
        resync_hex_proof(doc)
    assert not verify(write_json(tmp_path / "m.json", doc), mlp_hashed.bundle.root).valid


def test_hashed_output_mode_reports_the_output_hash_and_binds_it(tmp_path: Path) -> None:
    onnx_path, sample, calibration = model_files("breast_cancer_mlp")
    bundle = tmp_path / "bundle"
    compile_model(
        onnx_path,
        sample,
        bundle,
        calibration=calibration,
        options=CompileOptions(dev_srs=True, output_visibility="hashed"),
    )
    proved = prove(bundle, sample, tmp_path / "p.json")
    assert proved.outputs is None and proved.output_hash and len(proved.output_hash) == 1
    circuit, reference = proved.circuit_outputs[0], proved.onnxruntime_outputs[0]
    assert max(abs(c - r) for c, r in zip(circuit, reference, strict=True)) < 0.01
    result = zkinfer("verify", tmp_path / "p.json", "--bundle", bundle, "--input", sample, "--json")
    assert result.code == 0, result.stderr
    assert result.json["output_hash"] == proved.output_hash and result.json["outputs"] is None
    doc = json.loads((tmp_path / "p.json").read_text())
    doc["instances"][0][-1] = felt_to_hex(felt_from_hex(doc["instances"][0][-1]) + 1)
    assert not verify(write_json(tmp_path / "t.json", doc), bundle).valid
