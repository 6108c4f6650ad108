"""Models from old exporters (opset 6, IR version 3): ezkl proves them as given, and ONNX Runtime
checks them through a copy converted to an opset it implements."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from prover import prove, verify
from prover.core import bundle as b
from prover.core.onnx_convert import ORT_MIN_OPSET, reference_model, reference_plan
from prover.core.onnx_model import run_onnxruntime
from prover.core.witness import FIDELITY_TOLERANCE
from prover.errors import ModelError
from tests.helpers import write_json, zkinfer
from tests.helpers.onnx_models import old_exporter_model

SAMPLE = [round(0.1 * ((i * 7) % 11) - 0.5, 2) for i in range(18)]


@pytest.fixture(scope="module")
def old_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return old_exporter_model(tmp_path_factory.mktemp("old") / "old.onnx")


def test_reference_plan_converts_only_below_what_onnxruntime_implements() -> None:
    assert reference_plan(6).converted and reference_plan(6).reference_opset == ORT_MIN_OPSET
    assert reference_plan(1).reference_opset == ORT_MIN_OPSET
    assert not reference_plan(7).converted and not reference_plan(17).converted


def test_onnxruntime_runs_an_opset_6_model_through_a_converted_copy(old_model: Path) -> None:
    data, plan = reference_model(old_model.read_bytes())
    converted = onnx.load_model_from_string(data)
    assert plan.model_opset == 6 and plan.converted
    assert [o.version for o in converted.opset_import if o.domain == ""] == [ORT_MIN_OPSET]
    x = np.asarray(SAMPLE, dtype=np.float64).reshape(1, 2, 3, 3)
    (out,) = run_onnxruntime(old_model, [x], ["x"])
    # the same arithmetic by hand: batch norm, times k, PRelu with slope 0.25
    scale, bias = np.array([1.0, 0.5]), np.array([0.1, -0.1])
    mean, var = np.array([0.0, 0.2]), np.array([1.0, 2.0])
    bn = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * scale[:, None, None]
    m = (bn + bias[:, None, None]) * np.linspace(0.5, 1.5, 18).reshape(1, 2, 3, 3)
    assert np.allclose(out, np.where(m > 0, m, 0.25 * m), atol=1e-5)


def test_old_exporter_model_compiles_proves_and_verifies(old_model: Path, tmp_path: Path) -> None:
    sample = write_json(tmp_path / "in.json", {"input_data": [SAMPLE]})
    out = tmp_path / "bundle"
    args: list[str | Path] = ["compile", old_model, "--sample", sample, "--out", out, "--dev-srs"]
    result = zkinfer(*args, "--max-logrows", "12", "--json")
    assert result.code == 0, result.stderr
    m = json.loads((out / b.MANIFEST).read_text())
    # the circuit is the model as given; only ONNX Runtime's copy was converted
    assert (out / b.ONNX).read_bytes() == old_model.read_bytes()
    assert m["onnx"]["opset"] == 6
    assert m["onnx"]["onnxruntime"] == {
        "opset": ORT_MIN_OPSET,
        "converted": True,
        "scope": "onnxruntime reference only",
    }
    other = [round(v * -0.8 + 0.05, 3) for v in SAMPLE]
    proved = prove(
        tmp_path / "bundle",
        write_json(tmp_path / "other.json", {"input_data": [other]}),
        tmp_path / "proof.json",
    )
    assert proved.warnings == []
    biggest = max(abs(v) for v in proved.onnxruntime_outputs[0])
    assert proved.max_abs_diff <= FIDELITY_TOLERANCE * biggest
    verdict = verify(tmp_path / "proof.json", tmp_path / "bundle")
    assert verdict.valid and verdict.outputs == proved.outputs


def test_a_model_the_converter_cannot_bring_forward_is_a_model_error() -> None:
    # Upsample had no standard version before opset 7: there is nothing to convert it from
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])
    node = helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 2.0])
    model = helper.make_model(
        helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 6)]
    )
    with pytest.raises(ModelError, match=r"opset 6, older than ONNX Runtime implements .* again"):
        reference_model(model.SerializeToString())
