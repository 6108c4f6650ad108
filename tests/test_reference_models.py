"""The committed reference models: complete folders whose ONNX files run and match their README."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from prover.core.onnx_model import inspect_onnx, run_onnxruntime
from tests.helpers import MODELS

NAMES = ["breast_cancer_mlp", "digits_cnn", "digits_attention"]


@pytest.mark.parametrize("name", NAMES)
def test_folder_is_complete_and_files_are_small(name: str) -> None:
    folder = MODELS / name
    for file in ("model.py", "network.onnx", "input.json", "calibration.json", "README.md"):
        assert (folder / file).is_file(), f"{folder / file} is missing"
    assert (folder / "network.onnx").stat().st_size < 100_000


@pytest.mark.parametrize("name", NAMES)
def test_readme_states_the_same_held_out_accuracy_as_the_index(name: str) -> None:
    index = (MODELS / "README.md").read_text()
    row = next(line for line in index.splitlines() if line.startswith(f"| [{name}]"))
    accuracy = re.search(r"\| (0\.9\d+) \(\d+\) \|", row)
    assert accuracy, f"models/README.md gives no held-out accuracy >= 0.9 for {name}"
    assert accuracy.group(1) in (MODELS / name / "README.md").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_sample_runs_in_onnxruntime_with_the_declared_shape(name: str) -> None:
    info = inspect_onnx(MODELS / name / "network.onnx")
    # a symbolic batch axis (the MLP's) runs one sample here
    shape = tuple(d if isinstance(d, int) else 1 for d in info.inputs[0].dims)
    values = json.loads((MODELS / name / "input.json").read_text())["input_data"][0]
    outputs = run_onnxruntime(
        info.path, [np.asarray(values, dtype=np.float32).reshape(shape)], [info.inputs[0].name]
    )
    assert np.all(np.isfinite(outputs[0]))
    calibration = json.loads((MODELS / name / "calibration.json").read_text())["input_data"][0]
    assert len(calibration) % len(values) == 0 and len(calibration) >= 8 * len(values)
