"""The manifest's facts about a model, read from the protobuf bytes, agree with ``onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto, helper

from prover.core.onnx_convert import default_opset
from prover.core.onnx_model import value_dims
from prover.core.onnx_wire import onnx_signature
from tests.helpers import REPO


def _by_onnx(data: bytes) -> dict[str, Any]:
    model = onnx.load_model_from_string(data)
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    return {
        "opset": default_opset(model),
        "ops": sorted({n.op_type for n in model.graph.node}),
        "inputs": [v.name for v in model.graph.input if v.name not in initializers],
        "outputs": [v.name for v in model.graph.output],
        "input dims": [value_dims(v) for v in inputs],
        "output dims": [value_dims(v) for v in model.graph.output],
    }


@pytest.mark.parametrize("path", sorted((REPO / "models").glob("*/network.onnx")), ids=str)
def test_reference_models_read_as_onnx_reads_them(path: Path) -> None:
    data = path.read_bytes()
    assert onnx_signature(data) == _by_onnx(data)


def _model(opset: int) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])  # neither value nor name
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "g",
        [x, helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 2])],
        [y],
        [w],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("com.other", 99), helper.make_opsetid("", opset)],
    )


def test_initializers_listed_as_inputs_other_domains_and_merged_graphs_read_as_onnx() -> None:
    data = _model(13).SerializeToString()
    assert (
        onnx_signature(data)
        == _by_onnx(data)
        == {
            "opset": 13,
            "ops": ["MatMul", "Relu"],
            "inputs": ["x"],
            "outputs": ["y"],
            "input dims": [("batch", 2)],
            "output dims": [("unk", 2)],
        }
    )
    # protobuf merges a singular message given twice, and the last opset entry of a field wins
    extra = onnx.ModelProto()
    extra.graph.node.add().op_type = "Tanh"
    extra.graph.output.add().name = "z"
    extra.opset_import.add().version = 17
    twice = data + extra.SerializeToString()
    assert onnx_signature(twice) == _by_onnx(twice)
    assert onnx_signature(twice)["ops"] == ["MatMul", "Relu", "Tanh"]


@pytest.mark.parametrize("cut", [1, 7, 40])
def test_truncated_bytes_are_a_value_error(cut: int) -> None:
    data = _model(13).SerializeToString()
    with pytest.raises(ValueError):
        onnx_signature(data[:-cut])
