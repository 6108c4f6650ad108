"""prove and verify via the real CLI: valid proofs pass; bad proofs, inputs and bundles fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prover import verify
from prover.core import bundle as b
from tests.conftest import Compiled
from tests.helpers import model_files, resync_hex_proof, sample_values, write_json, zkinfer


def _proof(c: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(c.proof.read_text())
    return doc


def _bundle_copy(c: Compiled, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(c.bundle.root, copy)
    return copy


def test_prove_json_reports_outputs_beside_onnxruntime(mlp: Compiled, tmp_path: Path) -> None:
    result = zkinfer(
        "prove", mlp.bundle.root, "--input", mlp.sample, "--out", tmp_path / "p.json", "--json"
    )
    assert result.code == 0, result.stderr
    doc = result.json
    proven, reference = np.array(doc["outputs"][0]), np.array(doc["onnxruntime_outputs"][0])
    assert proven.shape == reference.shape == (2,)
    assert np.argmax(proven) == np.argmax(reference)
    assert doc["max_abs_diff"] == pytest.approx(float(np.max(np.abs(proven - reference))))
    assert doc["max_abs_diff"] < 0.01
    assert doc["srs_provenance"] == "dev-unsafe"
    assert {"witness", "prove", "verify"} <= doc["timings"].keys()
    assert (tmp_path / "p.json").is_file()


@pytest.mark.parametrize("fixture", ["mlp", "cnn", "attention"])
def test_reference_model_proofs_verify_and_agree_with_onnxruntime(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    c: Compiled = request.getfixturevalue(fixture)
    result = zkinfer("verify", c.proof, "--bundle", c.bundle.root, "--input", c.sample, "--json")
    assert result.code == 0, result.stderr
    doc = result.json
    assert doc["valid"] is True and doc["model_id"] == c.bundle.model_id
    claims = _proof(c)["zkinfer"]
    assert np.argmax(doc["outputs"][0]) == np.argmax(claims["onnxruntime_outputs"][0])
    assert doc["outputs"] == claims["outputs"]


def test_hashed_input_proof_reports_the_poseidon_hash(mlp_hashed: Compiled) -> None:
    claims = _proof(mlp_hashed)["zkinfer"]
    assert isinstance(claims["input_hash"], list) and len(claims["input_hash"]) == 1
    result = zkinfer(
        "verify",
        mlp_hashed.proof,
        "--bundle",
        mlp_hashed.bundle.root,
        "--input",
        mlp_hashed.sample,
        "--json",
    )
    assert result.code == 0, result.stderr
    assert result.json["input_hash"] == claims["input_hash"]
    assert result.json["inputs"] is None
    assert len(result.json["outputs"][0]) == 2


@pytest.mark.parametrize("fixture", ["mlp", "mlp_hashed"])
def test_verify_with_another_input_is_invalid(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    c: Compiled = request.getfixturevalue(fixture)
    values = sample_values("breast_cancer_mlp")
    values[0] += 0.25
    other = write_json(tmp_path / "other.json", {"input_data": [values]})
    result = zkinfer("verify", c.proof, "--bundle", c.bundle.root, "--input", other, "--json")
    assert result.code == 1
    assert "not about the input" in result.json["reason"]


@pytest.mark.parametrize(
    "values, fragment",
    [
        ([0.1] * 29, "has 29 values but the model expects shape [1, 30]"),
        ([float("nan")] + [0.0] * 29, "NaN and infinity cannot be proven"),
        ([float("inf")] + [0.0] * 29, "NaN and infinity cannot be proven"),
        ([1e9] + [0.0] * 29, "far outside the calibrated range"),
    ],
)
def test_prove_refuses_bad_inputs_with_exit_2(
    mlp: Compiled, tmp_path: Path, values: list[float], fragment: str
) -> None:
    data = tmp_path / "in.json"
    data.write_text(json.dumps({"input_data": [values]}))  # json writes NaN and Infinity
    out = tmp_path / "p.json"
    result = zkinfer("prove", mlp.bundle.root, "--input", data, "--out", out, "--json")
    assert result.code == 2
    assert fragment in result.json["error"]["message"]
    assert not out.exists()


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "not JSON"),
        ('{"input_data": [[1, 2]]}', "not a proof"),
        ("[1, 2, 3]", "not a proof"),
        ('{"proof": [1], "instances": "x"}', "exactly one list"),
        ('{"proof": [' + "9" * 5000 + '], "instances": [[]]}', "not JSON"),
        (" " * (8 * 1024 * 1024 + 1), "far larger than any proof"),
    ],
)
def test_malformed_proof_files_are_invalid(
    mlp: Compiled, tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = zkinfer("verify", path, "--bundle", mlp.bundle.root, "--json")
    assert result.code == 1
    assert result.json["valid"] is False and fragment in result.json["reason"]


def _verify_doc(c: Compiled, doc: dict[str, Any], path: Path) -> bool:
    write_json(path, doc)
    return verify(path, c.bundle.root).valid


@pytest.mark.parametrize("position", [0, 1, 31, 32, 100, 500, 1000, 2000, 3000, -1])
def test_flipped_proof_byte_is_invalid(mlp: Compiled, tmp_path: Path, position: int) -> None:
    doc = _proof(mlp)
    doc["proof"][position] ^= 0x01
    resync_hex_proof(doc)
    assert not _verify_doc(mlp, doc, tmp_path / "p.json")


def test_trailing_byte_makes_the_proof_invalid(mlp: Compiled, tmp_path: Path) -> None:
    # halo2 ignores bytes after the transcript; a second encoding of one proof must not verify
    doc = _proof(mlp)
    doc["proof"].append(0)
    resync_hex_proof(doc)
    result = verify(write_json(tmp_path / "p.json", doc), mlp.bundle.root)
    assert not result.valid and "exactly" in result.reason


@pytest.mark.parametrize("index", [0, 15, 29, 30, 31])
def test_changed_instance_is_invalid(mlp: Compiled, tmp_path: Path, index: int) -> None:
    doc = _proof(mlp)
    felt = bytearray(bytes.fromhex(doc["instances"][0][index]))
    felt[0] ^= 0x01
    doc["instances"][0][index] = felt.hex()
    assert not _verify_doc(mlp, doc, tmp_path / "p.json")


@pytest.mark.parametrize(
    "field, value",
    [
        ("outputs", [[1000.0, -1000.0]]),
        ("outputs", "benign"),
        ("input_hash", ["00" * 32]),
        ("output_hash", ["00" * 32]),
        ("srs_provenance", "ceremony"),
    ],
)
def test_a_claim_that_disagrees_with_the_verified_instances_is_invalid(
    mlp: Compiled, tmp_path: Path, field: str, value: Any
) -> None:
    # a tool reading "zkinfer.outputs" of a VALID document must be reading proven values
    doc = _proof(mlp)
    doc["zkinfer"][field] = value
    result = zkinfer(
        "verify", write_json(tmp_path / "p.json", doc), "--bundle", mlp.bundle.root, "--json"
    )
    assert result.code == 1, result.stdout
    assert f'"zkinfer.{field}"' in result.json["reason"]


def test_unverified_claims_and_a_missing_section_keep_the_verdict(
    mlp: Compiled, tmp_path: Path
) -> None:
    doc = _proof(mlp)
    doc["zkinfer"]["onnxruntime_outputs"] = [[1.0, 2.0]]
    doc["zkinfer"]["note"] = "edited"
    assert _verify_doc(mlp, doc, tmp_path / "a.json")
    del doc["zkinfer"]
    result = verify(write_json(tmp_path / "b.json", doc), mlp.bundle.root)
    assert result.valid and result.outputs == _proof(mlp)["zkinfer"]["outputs"]


@pytest.mark.parametrize("change", ["other bytes", "not a string", "dropped"])
def test_hex_proof_must_be_the_same_bytes_as_proof(
    mlp: Compiled, tmp_path: Path, change: str
) -> None:
    doc = _proof(mlp)
    assert doc["hex_proof"] == "0x" + bytes(doc["proof"]).hex()
    if change == "other bytes":
        doc["hex_proof"] = doc["hex_proof"][:-2] + ("00" if doc["hex_proof"][-2:] != "00" else "01")
    elif change == "not a string":
        doc["hex_proof"] = doc["proof"]
    else:
        del doc["hex_proof"]  # ezkl's duplicate is optional; only a disagreeing one is refused
    result = verify(write_json(tmp_path / "p.json", doc), mlp.bundle.root)
    assert result.valid is (change == "dropped")
    if change != "dropped":
        assert '"hex_proof" disagrees with "proof"' in result.reason


def test_proof_of_another_circuit_shape_is_rejected_before_ezkl(
    mlp: Compiled, cnn: Compiled
) -> None:
    result = zkinfer("verify", cnn.proof, "--bundle", mlp.bundle.root, "--json")
    assert result.code == 1 and result.json["valid"] is False


@pytest.mark.parametrize("name", [b.VK, b.SETTINGS, b.SRS])
def test_tampered_verify_artifact_is_exit_3(mlp: Compiled, tmp_path: Path, name: str) -> None:
    bundle = _bundle_copy(mlp, tmp_path)
    data = bytearray((bundle / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / name).write_bytes(bytes(data))
    result = zkinfer("verify", mlp.proof, "--bundle", bundle, "--json")
    assert result.code == 3
    assert f"{name}: digest mismatch" in result.json["error"]["message"]


@pytest.mark.parametrize("name", [b.PK, b.COMPILED, b.SETTINGS])
def test_tampered_prove_artifact_is_exit_3(mlp: Compiled, tmp_path: Path, name: str) -> None:
    bundle = _bundle_copy(mlp, tmp_path)
    with (bundle / name).open("r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0x01]))
    out = tmp_path / "p.json"
    result = zkinfer("prove", bundle, "--input", mlp.sample, "--out", out, "--json")
    assert result.code == 3
    assert f"{name}: digest mismatch" in result.json["error"]["message"]
    assert not out.exists()


def test_missing_bundle_file_and_missing_proof_are_exit_3(mlp: Compiled, tmp_path: Path) -> None:
    bundle = _bundle_copy(mlp, tmp_path)
    (bundle / b.VK).unlink()
    result = zkinfer("verify", mlp.proof, "--bundle", bundle, "--json")
    assert result.code == 3 and "vk.key: missing" in result.json["error"]["message"]
    result = zkinfer("verify", tmp_path / "absent.json", "--bundle", mlp.bundle.root, "--json")
    assert result.code == 3 and "no such proof file" in result.json["error"]["message"]
    result = zkinfer("verify", mlp.proof, "--bundle", tmp_path / "nowhere", "--json")
    assert result.code == 3 and "no such bundle folder" in result.json["error"]["message"]


def test_non_null_split_or_protocol_is_another_encoding_and_invalid(
    mlp: Compiled, tmp_path: Path
) -> None:
    for field, value in (("split", {"start": 0, "end": 5}), ("protocol", {"x": 1})):
        doc = _proof(mlp)
        doc[field] = value
        result = verify(write_json(tmp_path / "p.json", doc), mlp.bundle.root)
        assert not result.valid and f'"{field}" must be null' in result.reason


def test_same_architecture_with_other_weights_rejects_the_proof_by_its_key(
    mlp: Compiled, tmp_path: Path
) -> None:
    """Same shapes, instance count and proof length: only the weights (fixed in the key) differ."""
    import onnx
    from onnx import numpy_helper

    from prover import CompileOptions, compile_model

    onnx_path, sample, calibration = model_files("breast_cancer_mlp")
    model = onnx.load(onnx_path)
    first = model.graph.initializer[0]
    weights = numpy_helper.to_array(first).copy()
    weights.flat[0] += 0.25
    first.CopyFrom(numpy_helper.from_array(weights, first.name))
    tweaked = tmp_path / "tweaked.onnx"
    onnx.save(model, tweaked)
    other = compile_model(
        tweaked,
        sample,
        tmp_path / "other",
        calibration=calibration,
        options=CompileOptions(dev_srs=True),
    ).bundle
    assert other.model_id != mlp.bundle.model_id
    assert other.manifest.instances == mlp.bundle.manifest.instances
    assert other.manifest.proof_bytes == mlp.bundle.manifest.proof_bytes
    doc = _proof(mlp)
    with_claims = verify(write_json(tmp_path / "a.json", doc), other.root)
    assert not with_claims.valid and "the proof says it is for model" in with_claims.reason
    del doc["zkinfer"]
    bare = verify(write_json(tmp_path / "b.json", doc), other.root)
    assert not bare.valid and "[halo2]" in bare.reason


def test_verify_works_inside_a_running_event_loop(mlp: Compiled) -> None:
    import asyncio

    async def main() -> bool:
        return verify(mlp.proof, mlp.bundle.root).valid

    assert asyncio.run(main())


def test_unexpected_error_exits_3_not_1(
    mlp: Compiled, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import prover.core.verify as verify_module
    from prover.cli.app import app

    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(verify_module, "verify", broken)
    monkeypatch.delenv("ZKINFER_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        app(["verify", str(mlp.proof), "--bundle", str(mlp.bundle.root), "--json"])
    assert info.value.code == 3
    out = capsys.readouterr().out
    assert json.loads(out)["error"]["message"].startswith("internal error: KeyError")
