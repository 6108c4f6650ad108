"""Small ONNX models made here: old-exporter opsets and integer inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: list[onnx.TensorProto],
    opset: int,
    path: Path,
    *,
    ir_version: int | None = None,
) -> Path:
    graph_inputs = list(inputs)
    if ir_version is not None and ir_version < 4:
        # before IR 4 every initializer had to be listed among the graph inputs too
        graph_inputs += [
            helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits
        ]
    graph = helper.make_graph(nodes, "g", graph_inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ir_version is not None:
        model.ir_version = ir_version
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def old_exporter_model(path: Path) -> Path:
    """Opset 6, IR version 3: BatchNormalization, Mul and PRelu, whose opset-6 kernels ONNX
    Runtime no longer has."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])
    f = np.float32
    inits = [
        numpy_helper.from_array(np.array([1.0, 0.5], f), "scale"),
        numpy_helper.from_array(np.array([0.1, -0.1], f), "bias"),
        numpy_helper.from_array(np.array([0.0, 0.2], f), "mean"),
        numpy_helper.from_array(np.array([1.0, 2.0], f), "var"),
        numpy_helper.from_array(np.full((2, 1, 1), 0.25, f), "slope"),
        numpy_helper.from_array(np.linspace(0.5, 1.5, 18, dtype=f).reshape(1, 2, 3, 3), "k"),
    ]
    nodes = [
        helper.make_node(
            "BatchNormalization",
            ["x", "scale", "bias", "mean", "var"],
            ["bn"],
            epsilon=1e-5,
            is_test=1,
        ),
        helper.make_node("Mul", ["bn", "k"], ["m"]),
        helper.make_node("PRelu", ["m", "slope"], ["y"]),
    ]
    return _save(nodes, [x], [y], inits, 6, path, ir_version=3)


VOCAB = 10
EMBED = 3


def token_model(path: Path) -> Path:
    """A float input ``x`` [1, 2, 3] plus token ids ``ids`` (int64, [1, 2]) looked up in an
    embedding table and added to ``x``; two outputs (the sum, and its mean over tokens)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, EMBED])
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, EMBED])
    mean = helper.make_tensor_value_info("mean", TensorProto.FLOAT, [1, EMBED])
    table = np.linspace(-1.5, 1.5, VOCAB * EMBED, dtype=np.float32).reshape(VOCAB, EMBED)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], axis=0),
        helper.make_node("Add", ["e", "x"], ["y"]),
        helper.make_node("ReduceMean", ["y"], ["mean"], axes=[1], keepdims=0),
    ]
    return _save(nodes, [x, ids], [y, mean], [numpy_helper.from_array(table, "table")], 13, path)
