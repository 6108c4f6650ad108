"""Export from torch: the ONNX file is checked against torch and a disagreeing file is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="export needs the [export] extra (torch==2.13.0)")

import torch

from prover.errors import ModelError
from prover.export import ExportMismatch, export_torch, write_input_json


class Branchy(torch.nn.Module):
    """Tracing records one branch only: the exported graph disagrees on the other branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x * 3


def test_export_checks_onnxruntime_against_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    report = export_torch(
        model, torch.rand(1, 4), tmp_path / "m.onnx", check_inputs=torch.rand(5, 4)
    )
    assert report.path.is_file() and report.n_checked == 6
    assert report.max_abs_diff <= 1e-5


def test_export_that_disagrees_with_torch_fails_loudly_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportMismatch, match="tolerance") as info:
        export_torch(Branchy(), torch.ones(1, 4), out, check_inputs=-torch.ones(2, 4))
    assert isinstance(info.value, ModelError)
    assert not out.exists()


def test_write_input_json_concatenates_samples_for_calibration(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    write_input_json(path, [[1.0, 2.0], [3.0, 4.0]])
    assert json.loads(path.read_text()) == {"input_data": [[1.0, 2.0, 3.0, 4.0]]}
