"""The CLI contract: help, version, usage errors, and exactly one JSON object with --json."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Compiled
from tests.helpers import zkinfer


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
        mlp.bundle.root.parent / "bundle" / "network.onnx",
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
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(doc))
    result = zkinfer("verify", path, "--bundle", mlp.bundle.root)
    assert result.code == 1
    assert "INVALID" in result.stderr and "[halo2]" in result.stderr
