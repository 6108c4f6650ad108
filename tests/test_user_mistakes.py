"""Mistakes a new user makes get an error that names the mistake and the fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from prover import prove
from tests.conftest import Compiled
from tests.helpers import REPO, model_files, write_json, zkinfer


def test_readme_python_example_runs_and_a_second_input_is_not_out_of_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"### Python API\n\n```python\n(.*?)```", readme, re.S)
    assert block is not None
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "breast_cancer_mlp").symlink_to(REPO / "models" / "breast_cancer_mlp")
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "README.md", "exec"), {})  # the README's own code
    # the next input a user sends: another held-out sample, outside the first sample's range
    _, _, calibration = model_files("breast_cancer_mlp")
    rows = json.loads(calibration.read_text())["input_data"][0]
    other = write_json(tmp_path / "other.json", {"input_data": [rows[30:60]]})
    result = prove(tmp_path / "bundle", other, tmp_path / "other-proof.json")
    assert result.outputs is not None


def test_calibration_with_one_list_per_sample_says_to_concatenate(tmp_path: Path) -> None:
    onnx, sample, calibration = model_files("breast_cancer_mlp")
    flat = json.loads(calibration.read_text())["input_data"][0]
    per_sample = write_json(
        tmp_path / "calibration.json", {"input_data": [flat[i : i + 30] for i in range(0, 90, 30)]}
    )
    result = zkinfer(
        *("compile", onnx, "--sample", sample, "--calibration", per_sample),
        *("--out", tmp_path / "bundle", "--dev-srs", "--json"),
    )
    assert result.code == 2
    message = result.json["error"]["message"]
    assert "holds 3 lists, one per sample" in message and "concatenates its samples" in message


@pytest.mark.parametrize("cut", [16, 63])
def test_a_short_bundle_digest_says_wrong_length(mlp: Compiled, cut: int) -> None:
    prefix = mlp.bundle.digest[:cut]
    result = zkinfer(
        "verify", mlp.proof, "--bundle", mlp.bundle.root, "--bundle-digest", prefix, "--json"
    )
    assert result.code == 2
    assert f"wrong length ({cut} hex digits" in result.json["error"]["message"]


def test_a_model_passed_as_the_bundle_says_it_is_a_model(mlp: Compiled, tmp_path: Path) -> None:
    onnx, sample, _ = model_files("breast_cancer_mlp")
    commands: list[list[str | Path]] = [
        ["verify", mlp.proof, "--bundle", onnx],
        ["prove", onnx, "--input", sample, "--out", tmp_path / "p.json"],
    ]
    for args in commands:
        result = zkinfer(*args, "--json")
        assert result.code == 2, result.stdout
        assert "is an ONNX model, not a bundle" in result.json["error"]["message"]
    manifest = zkinfer("verify", mlp.proof, "--bundle", mlp.bundle.path("manifest.json"), "--json")
    assert manifest.code == 2 and "pass the folder that holds it" in manifest.stdout
