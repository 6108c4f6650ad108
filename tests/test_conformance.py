"""Conformance: models made here for every operator family a user is likely to bring.

Each case (``tests/helpers/conformance.py``) is compiled once with a development SRS, its second
input (not the sample) proven and the proof verified against that input; the proven outputs must
match ONNX Runtime within ``ABS_TOLERANCE + REL_TOLERANCE * max |output|``. Each operator ezkl
cannot compile is refused at compile with exit 2 naming it. ``scripts/conformance_table.py`` runs
the same cases for the table in docs/models.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prover.core.onnx_model import inspect_onnx
from tests.helpers import write_json, zkinfer
from tests.helpers.conformance import CASES, UNSUPPORTED, Case, Unsupported, run_case

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_compiles_proves_verifies_and_matches_onnxruntime(case: Case, tmp_path: Path) -> None:
    result = run_case(case, tmp_path)
    assert result.valid, f"{case.name}: the proof did not verify against its input"
    assert result.max_abs_diff <= result.tolerance, (
        f"{case.name}: proven outputs differ from ONNX Runtime by {result.max_abs_diff:.4g} "
        f"(tolerance {result.tolerance:.4g})"
    )
    outputs = inspect_onnx(tmp_path / "model.onnx").outputs
    assert len(result.outputs) == len(result.onnxruntime_outputs) == len(outputs)


@pytest.mark.parametrize("case", UNSUPPORTED, ids=[c.name for c in UNSUPPORTED])
def test_operator_ezkl_cannot_compile_is_refused_naming_it(
    case: Unsupported, tmp_path: Path
) -> None:
    model = tmp_path / "model.onnx"
    case.build(model)
    sample = write_json(tmp_path / "in.json", {"input_data": [[0.1] * 12]})
    out = tmp_path / "bundle"
    result = zkinfer("compile", model, "--sample", sample, "--out", out, "--dev-srs", "--json")
    assert result.code == 2, result.stderr
    error = result.json["error"]
    assert error["type"] == "ModelError" and case.named in error["message"]
    assert "Traceback" not in result.stderr and not out.exists()
