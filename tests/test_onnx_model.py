"""Untrusted ONNX files: malformed, truncated, unsafe or unsupported models are refused by name."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from prover.core.onnx_model import inspect_onnx
from prover.errors import ModelError
from tests.helpers import model_files


def _tiny(op: str = "Relu", domain: str = "") -> onnx.ModelProto:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 4])
    node = helper.make_node(op, ["input"], ["output"], domain=domain)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    graph = helper.make_graph([node], "g", [x], [y])
    return helper.make_model(graph, opset_imports=opsets)


def test_reference_model_signature_is_read() -> None:
    info = inspect_onnx(model_files("digits_cnn")[0])
    assert info.inputs[0].dims == (1, 1, 8, 8)
    assert "Conv" in info.op_types and info.opset == 17


def test_symbolic_batch_dimension_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_tiny(), path)
    info = inspect_onnx(path)
    assert info.symbolic_dims == ("batch_size",)
    assert info.inputs[0].resolved({"batch_size": 3}) == (3, 4)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "the file is empty"),
        (b"definitely not a protobuf \xff\xff\xff", "not a valid ONNX file"),
    ],
)
def test_garbage_files_are_refused(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=fragment):
        inspect_onnx(path)


def test_truncated_model_is_refused(tmp_path: Path) -> None:
    data = model_files("breast_cancer_mlp")[0].read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        inspect_onnx(path)


def test_missing_path_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        inspect_onnx(tmp_path / "absent.onnx")
    with pytest.raises(ModelError, match="not a file"):
        inspect_onnx(tmp_path)


def test_oversized_model_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_tiny(), path)
    with pytest.raises(ModelError, match="over the 10-byte limit"):
        inspect_onnx(path, max_bytes=10)


def test_custom_operator_domain_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "custom.onnx"
    onnx.save(_tiny("Magic", domain="com.example"), path)
    with pytest.raises(ModelError, match="custom operator domains"):
        inspect_onnx(path)


def _with_external_weight(location: str) -> onnx.ModelProto:
    model = _tiny("Add")
    model.graph.node[0].input.append("w")
    weight = numpy_helper.from_array(__import__("numpy").ones(4, dtype="float32"), "w")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    model.graph.initializer.append(weight)
    return model


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_model_folder_is_refused(tmp_path: Path, location: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = folder / "m.onnx"
    path.write_bytes(_with_external_weight(location).SerializeToString())
    with pytest.raises(ModelError, match="outside the model folder"):
        inspect_onnx(path)


def test_external_data_inside_folder_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    path.write_bytes(_with_external_weight("weights.bin").SerializeToString())
    with pytest.raises(ModelError, match="save_as_external_data=False"):
        inspect_onnx(path)


def test_missing_external_data_inside_folder_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(_with_external_weight("weights.bin").SerializeToString())
    with pytest.raises(ModelError, match=r"weights\.bin"):
        inspect_onnx(path)
