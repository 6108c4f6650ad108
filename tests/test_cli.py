"""The CLI contract: help, version, usage errors, and exactly one JSON object with --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Compiled
from tests.helpers import compile_args, resync_hex_proof, zkinfer


def test_help_lists_the_commands_and_exit_codes() -> None:
    result = zkinfer("--help")
    assert result.code == 0
    for command in ("compile", "prove", "verify", "demo", "srs"):
        assert command in result.stdout
    assert "1 proof invalid" in result.stdout


def test_version() -> None:
    result = zkinfer("--version")
    assert result.code == 0 and result.stdout.startswith("zkinfer ")


def test_missing_required_option_is_usage_error() -> None:
    result = zkinfer("prove", "somewhere")
    assert result.code == 2
    assert "--input" in result.stderr


def test_json_mode_keeps_ezkl_chatter_off_stdout(mlp: Compiled, tmp_path: Path) -> None:
    # calibrate prints a table to fd 1 from Rust; it must not reach the JSON on stdout
    result = zkinfer(
        "compile",
        mlp.bundle.path("network.onnx"),
        "--sample",
        mlp.sample,
        "--out",
        tmp_path / "b",
        "--dev-srs",
        "--json",
    )
    assert result.code == 0, result.stderr
    assert result.json["ok"] is True and result.json["reused"] is False
    assert "Numerical Fidelity Report" not in result.stdout


def test_human_output_goes_to_stderr(mlp: Compiled) -> None:
    result = zkinfer("verify", mlp.proof, "--bundle", mlp.bundle.root)
    assert result.code == 0
    assert result.stdout == ""
    assert "VALID" in result.stderr and "dev-unsafe" in result.stderr


def test_human_output_shows_bracketed_error_text_verbatim(mlp: Compiled, tmp_path: Path) -> None:
    doc = json.loads(mlp.proof.read_text())
    doc["proof"][100] ^= 0x01
    resync_hex_proof(doc)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(doc))
    result = zkinfer("verify", path, "--bundle", mlp.bundle.root)
    assert result.code == 1
    assert "INVALID" in result.stderr and "[halo2]" in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["verify", "proof.json"], "Missing option '--bundle'"),
        (["compile", "m.onnx", "--sample", "s.json", "--out", "o", "--batch", "x"], "--batch"),
        (["prove", "bundle", "--input", "in.json"], "Missing option '--out'"),
    ],
)
def test_argument_errors_honour_json_and_exit_2(args: list[str], fragment: str) -> None:
    result = zkinfer(*args, "--json")
    assert result.code == 2
    assert result.json["ok"] is False and fragment in result.json["error"]["message"]


def test_bad_numbers_are_refused_before_any_work(mlp: Compiled, tmp_path: Path) -> None:
    result = zkinfer(*compile_args("breast_cancer_mlp", tmp_path / "o", "--max-logrows", "0"))
    assert result.code == 2 and "--max-logrows 0" in result.stderr
    result = zkinfer("bench", "--repeat", "0", "--workdir", tmp_path / "w")
    assert result.code == 2 and "--repeat 0" in result.stderr
    assert not (tmp_path / "w").exists()


def test_prove_refuses_an_out_path_it_cannot_or_must_not_write(
    mlp: Compiled, tmp_path: Path
) -> None:
    result = zkinfer("prove", mlp.bundle.root, "--input", mlp.sample, "--out", tmp_path)
    assert result.code == 2 and "is a folder" in result.stderr
    inside = mlp.bundle.root / "proof.json"
    result = zkinfer("prove", mlp.bundle.root, "--input", mlp.sample, "--out", inside)
    assert result.code == 2 and "inside the bundle" in result.stderr
    assert not inside.exists()
