"""A tiny model built in the test (one Gemm, 3 inputs, 2 outputs) whose proofs are fast:
compiled with max_logrows 12, its proving key is about 30 MB instead of the MLP's 138 MB."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TINY_MAX_LOGROWS = 12


#: ``verifier_limit`` for tiny models with hashed inputs, which the tests do not deploy: at
#: logrows 12 their range checks take 5 lookup columns and their verifiers are over EIP-170's
#: limit even without Freivalds' argument (compile would refuse them, naming a larger
#: ``max_logrows``).
TINY_HASHED_VERIFIER_LIMIT = 0

#: The batch size of the ``tiny_batch`` fixture.
TINY_BATCH = 4


def write_tiny_model(folder: Path, *, batch: int | None = None) -> tuple[Path, Path, Path]:
    """Write ``network.onnx``, a sample input and calibration data; return their paths.

    With ``batch``, the same graph with a symbolic leading ``batch`` axis on its input and output,
    and a sample of ``batch`` rows (:func:`tiny_input` 0, 1, ...), to compile with that batch size.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lead: int | str = 1 if batch is None else "batch"
    weights = np.array([[0.5, -0.25], [0.125, 0.75], [-0.5, 0.25]], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [lead, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [lead, 2])],
        [
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array([0.1, -0.1], dtype=np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx_path, sample, calibration = (
        folder / "network.onnx",
        folder / "input.json",
        folder / "calibration.json",
    )
    onnx.save(model, onnx_path)
    rows = [[0.5, -0.2, 0.3]] if batch is None else [tiny_row(i) for i in range(batch)]
    sample.write_text(json.dumps({"input_data": [[v for row in rows for v in row]]}))
    cal = [0.5, -0.2, 0.3, -1.0, 1.0, 0.9, 0.0, 0.4, -0.7, 0.8, -0.6, -0.9]
    calibration.write_text(json.dumps({"input_data": [cal]}))
    return onnx_path, sample, calibration


def write_two_output_model(folder: Path, batch: int) -> tuple[Path, Path, Path]:
    """The tiny Gemm ``y`` beside a second output ``z = x / 2``, both with a symbolic leading
    ``batch`` axis: a batch model whose slots are not one run of instances each."""
    onnx_path, sample, calibration = write_tiny_model(folder, batch=batch)
    model = onnx.load(onnx_path)
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    model.graph.initializer.append(half)
    model.graph.node.append(helper.make_node("Mul", ["x", "half"], ["z"]))
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3]))
    onnx.checker.check_model(model)
    onnx.save(model, onnx_path)
    return onnx_path, sample, calibration


def tiny_row(i: int) -> list[float]:
    """The values of :func:`tiny_input` ``i``."""
    return [round(((i * 7) % 19) / 10 - 0.9, 2), 0.1, -0.3]


def tiny_input(i: int) -> dict[str, list[list[float]]]:
    """A distinct in-range input for request number ``i`` (one slot of the batch model)."""
    return {"input_data": [tiny_row(i)]}


def tiny_outputs(i: int) -> list[float]:
    """What the tiny model computes for :func:`tiny_input` ``i``, in floating point (x @ W + b);
    a proof's outputs are these up to the circuit's fixed-point rounding."""
    weights = [[0.5, -0.25], [0.125, 0.75], [-0.5, 0.25]]
    bias = [0.1, -0.1]
    x = tiny_row(i)
    return [sum(x[k] * weights[k][j] for k in range(3)) + bias[j] for j in range(2)]
