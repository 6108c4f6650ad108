"""A batch model gets slots only when its rows are independent: compile refuses a model that
mixes the batch axis, in ONNX Runtime, before any ezkl step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from prover import CompileOptions, ModelError, compile_model
from prover.core.batch_rows import check_rows_independent
from prover.core.onnx_model import inspect_onnx
from tests.helpers.tiny import (
    TINY_BATCH,
    TINY_MAX_LOGROWS,
    write_tiny_model,
    write_two_output_model,
)


class _Steps:
    """A progress that records the steps compile started."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, step: str, detail: str = "") -> None:
        self.started.append(step)

    def done(self, step: str, seconds: float) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def failed(self, step: str) -> None:
        pass


def _write_row_sum_model(folder: Path) -> tuple[Path, Path]:
    """y = x + ReduceSum(x, axes=[0], keepdims=1): every output row depends on every input row."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=1),
            helper.make_node("Add", ["x", "total"], ["y"]),
        ],
        "row_sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx_path, sample = folder / "network.onnx", folder / "input.json"
    onnx.save(model, onnx_path)
    sample.write_text(json.dumps({"input_data": [[0.5, -0.2, 0.3, 0.1, 0.4, -0.6]]}))
    return onnx_path, sample


def test_a_model_that_mixes_the_batch_rows_is_refused_before_any_ezkl_step(
    tmp_path: Path,
) -> None:
    onnx_path, sample = _write_row_sum_model(tmp_path / "m")
    steps = _Steps()
    with pytest.raises(ModelError, match="depends on other rows of the batch") as caught:
        compile_model(
            onnx_path,
            sample,
            tmp_path / "bundle",
            options=CompileOptions(dev_srs=True, max_logrows=TINY_MAX_LOGROWS, batch_size=2),
            progress=steps,
        )
    assert caught.value.field == "batch_size"
    assert "compile with batch 1" in (caught.value.hint or "")
    assert steps.started == ["inspect model"]  # no settings, calibration or other ezkl step
    assert not (tmp_path / "bundle").exists()


def test_the_tiny_batch_models_pass_the_check(tmp_path: Path) -> None:
    """Their rows are independent (a Gemm per row, and x / 2): the batch fixtures still compile."""
    for onnx_path, sample, _ in (
        write_tiny_model(tmp_path / "one", batch=TINY_BATCH),
        write_two_output_model(tmp_path / "two", TINY_BATCH),
    ):
        values = json.loads(sample.read_text())["input_data"]
        data = inspect_onnx(onnx_path).data
        check_rows_independent(data, ["x"], [(TINY_BATCH, 3)], values, TINY_BATCH)
