"""compile: real ezkl circuits from the reference models, and every way compile refuses to run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from prover import CompileOptions, compile_model
from prover.core import bundle as b
from prover.core.hashing import sha256_file
from prover.core.manifest import InstancePart, Visibility
from prover.errors import ModelError, SrsError, UsageError
from prover.version import BUNDLE_FORMAT
from tests.conftest import Compiled
from tests.helpers import compile_args, model_files, zkinfer


def test_bundle_holds_every_file_with_matching_digests(mlp: Compiled) -> None:
    m = mlp.bundle.manifest
    for name in b.FILES:
        assert sha256_file(mlp.bundle.path(name)) == m.files[name]
    assert m.format == BUNDLE_FORMAT
    assert m.ezkl_version == "23.0.5"
    assert m.visibility == Visibility(input="public", output="public", param="fixed")
    assert m.srs.provenance == "dev-unsafe"
    assert m.instances.to_json() == {
        "input": {"visibility": "public", "offset": 0, "count": 30},
        "output": {"visibility": "public", "offset": 30, "count": 2},
        "total": 32,
    }
    assert m.inputs[0].shape == (1, 30) and m.outputs[0].shape == (1, 2)
    assert {"setup", "calibrate", "self-test proof", "total"} <= m.timings.keys()


def test_solidity_verifier_is_compiled_and_fits_the_eip170_limit(mlp: Compiled) -> None:
    verifier = json.loads(mlp.bundle.path(b.VERIFIER_JSON).read_text())
    assert verifier["compiler"].startswith("solc-js 0.8.37")
    assert [f["name"] for f in verifier["abi"] if f["type"] == "function"] == ["verifyProof"]
    assert 0 < verifier["runtime_size"] <= 24_576
    assert len(verifier["deployed_bytecode"]) == 2 + 2 * verifier["runtime_size"]


def test_hashed_inputs_put_one_poseidon_hash_in_the_instances(mlp_hashed: Compiled) -> None:
    layout = mlp_hashed.bundle.manifest.instances
    assert layout.input == InstancePart(visibility="hashed", offset=0, count=1)
    assert layout.output.count == 2


def test_model_id_depends_on_run_arguments(mlp: Compiled, mlp_hashed: Compiled) -> None:
    assert mlp.bundle.model_id != mlp_hashed.bundle.model_id
    assert mlp.bundle.manifest.onnx.sha256 == mlp_hashed.bundle.manifest.onnx.sha256


def test_second_compile_into_same_folder_reuses_the_bundle(mlp: Compiled) -> None:
    result = zkinfer(*compile_args("breast_cancer_mlp", mlp.bundle.root, "--dev-srs", "--json"))
    assert result.code == 0, result.stderr
    assert result.json["reused"] is True
    assert result.json["model_id"] == mlp.bundle.model_id


def test_compile_refuses_to_overwrite_a_different_bundle(mlp: Compiled, tmp_path: Path) -> None:
    onnx_path, sample, _ = model_files("digits_cnn")
    before = sha256_file(mlp.bundle.path(b.MANIFEST))
    with pytest.raises(UsageError, match="holds another model"):
        compile_model(onnx_path, sample, mlp.bundle.root, options=CompileOptions(dev_srs=True))
    assert sha256_file(mlp.bundle.path(b.MANIFEST)) == before


def _mod_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("Relu", ["input"], ["r"]),
        helper.make_node("Mod", ["r", "r"], ["output"], fmod=1),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_unsupported_operator_is_named(tmp_path: Path) -> None:
    model = _mod_model(tmp_path / "mod.onnx")
    sample = tmp_path / "in.json"
    sample.write_text('{"input_data": [[0.1, 0.2, 0.3, 0.4]]}')
    with pytest.raises(ModelError, match=r"operator\(s\) Rem \(ONNX Mod\)"):
        compile_model(model, sample, tmp_path / "out", options=CompileOptions(dev_srs=True))
    assert not (tmp_path / "out").exists()
    result = zkinfer("compile", model, "--sample", sample, "--out", tmp_path / "o2", "--dev-srs")
    assert result.code == 2
    assert "Rem (ONNX Mod)" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--param-visibility", "private"], "private params would let a prover swap the weights"),
        (["--param-visibility", "hashed"], "hashed params need their hash pinned"),
        (["--input-visibility", "secret"], "--input-visibility 'secret'"),
        (["--target", "speed"], "--target 'speed'"),
        (["--batch", "0"], "--batch 0"),
        (["--verifier-limit", "-1"], "--verifier-limit -1"),
        (["--srs", "x.srs", "--dev-srs"], "exclude each other"),
    ],
)
def test_unsafe_or_unknown_options_are_usage_errors(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    onnx_path, sample, _ = model_files("breast_cancer_mlp")
    result = zkinfer("compile", onnx_path, "--sample", sample, "--out", tmp_path / "o", *args)
    assert result.code == 2, result.stderr
    assert fragment in result.stderr


def test_missing_srs_is_an_environment_error_naming_both_remedies(tmp_path: Path) -> None:
    onnx_path, sample, _ = model_files("breast_cancer_mlp")
    cache = tmp_path / "empty-cache"
    with pytest.raises(SrsError, match=r"pass srs kzg15.srs .* dev_srs to") as raised:
        compile_model(onnx_path, sample, tmp_path / "o", options=CompileOptions())
    assert raised.value.hint_fields == ("srs", "dev_srs")
    result = zkinfer(
        "compile",
        onnx_path,
        "--sample",
        sample,
        "--out",
        tmp_path / "o",
        "--json",
        env={"ZKINFER_CACHE_DIR": str(cache)},
    )
    assert result.code == 3
    assert result.json["error"]["type"] == "SrsError"
    assert re.search(r"pass --srs kzg15.srs .* --dev-srs to", result.json["error"]["message"])
    assert not (tmp_path / "o").exists()


def test_supplied_srs_not_matching_the_ceremony_is_marked_dev_unsafe(
    mlp: Compiled, tmp_path: Path
) -> None:
    onnx_path, sample, calibration = model_files("breast_cancer_mlp")
    result = compile_model(
        onnx_path,
        sample,
        tmp_path / "o",
        calibration=calibration,
        options=CompileOptions(srs=mlp.bundle.path(b.SRS)),
    )
    srs = result.bundle.manifest.srs
    assert srs.provenance == "dev-unsafe"
    assert "does not match the published ceremony digest" in (srs.note or "")


def test_missing_srs_file_is_named(tmp_path: Path) -> None:
    onnx_path, sample, _ = model_files("breast_cancer_mlp")
    with pytest.raises(SrsError, match=r"absent\.srs: SRS file not found"):
        compile_model(
            onnx_path, sample, tmp_path / "o", options=CompileOptions(srs=tmp_path / "absent.srs")
        )


@pytest.mark.parametrize(
    "content, code, fragment",
    [
        (None, 2, "no such file"),
        (b"not onnx at all", 2, "not a valid ONNX file"),
        (b"\x08\x07\x12\x07pytorch\x1a\x032.13:\xa4\x02\n", 2, "not a valid ONNX file"),
    ],
)
def test_bad_model_files_exit_2_without_traceback(
    tmp_path: Path, content: bytes | None, code: int, fragment: str
) -> None:
    model = tmp_path / "m.onnx"
    if content is not None:
        model.write_bytes(content)
    _, sample, _ = model_files("breast_cancer_mlp")
    result = zkinfer("compile", model, "--sample", sample, "--out", tmp_path / "o", "--json")
    assert result.code == code
    assert fragment in result.json["error"]["message"]
    assert "Traceback" not in result.stderr


def test_sample_of_wrong_shape_is_refused_before_any_circuit_work(tmp_path: Path) -> None:
    onnx_path, _, _ = model_files("breast_cancer_mlp")
    sample = tmp_path / "s.json"
    sample.write_text('{"input_data": [[1.0, 2.0]]}')
    result = zkinfer("compile", onnx_path, "--sample", sample, "--out", tmp_path / "o")
    assert result.code == 2
    assert "has 2 values but the model expects shape [1, 30]" in result.stderr


def _dynamic_batch_model(path: Path) -> Path:
    weights = onnx.numpy_helper.from_array(
        __import__("numpy").linspace(-1, 1, 12, dtype="float32").reshape(4, 3), "w"
    )
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 3])
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["h"]),
        helper.make_node("Relu", ["h"], ["output"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[weights])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_batch_compiles_a_symbolic_batch_axis_and_proves_every_row(tmp_path: Path) -> None:
    model = _dynamic_batch_model(tmp_path / "dyn.onnx")
    rows = [[0.1, 0.2, 0.3, 0.4], [0.5, -0.5, 0.25, 0.0], [-0.3, 0.9, 0.1, 0.2]]
    sample = tmp_path / "in.json"
    sample.write_text(json.dumps({"input_data": [[v for row in rows for v in row]]}))
    result = zkinfer(
        "compile",
        model,
        "--sample",
        sample,
        "--out",
        tmp_path / "b",
        "--batch",
        "3",
        "--dev-srs",
        "--json",
    )
    assert result.code == 0, result.stderr
    manifest = json.loads((tmp_path / "b" / b.MANIFEST).read_text())
    assert manifest["batch_size"] == 3 and manifest["inputs"][0]["shape"] == [3, 4]
    proved = zkinfer(
        "prove", tmp_path / "b", "--input", sample, "--out", tmp_path / "p.json", "--json"
    )
    assert proved.code == 0, proved.stderr
    assert len(proved.json["outputs"][0]) == 9
    assert proved.json["max_abs_diff"] < 0.01


def test_symbolic_dimension_other_than_batch_is_a_usage_error(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "seq"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, "seq"])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "g", [x], [y])
    model = tmp_path / "seq.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    sample = tmp_path / "in.json"
    sample.write_text('{"input_data": [[0.5]]}')
    with pytest.raises(UsageError, match=r"dimension 1 of 'input' is symbolic \('seq'\)"):
        compile_model(model, sample, tmp_path / "o", options=CompileOptions(dev_srs=True))


def test_batch_on_a_fixed_batch_model_is_a_usage_error(tmp_path: Path) -> None:
    onnx_path, sample, _ = model_files("digits_cnn")  # exported with a fixed batch of 1
    result = zkinfer(
        "compile", onnx_path, "--sample", sample, "--out", tmp_path / "o", "--batch", "4"
    )
    assert result.code == 2
    assert "fixed batch dimension" in result.stderr
