"""compile makes verifiers that deploy under EIP-170's 24,576-byte limit on code.

ezkl checks a matrix product whose both sides are wider than one row (a batch's rows times the
weights) with Freivalds' argument, whose columns and challenge make the verifier larger: the batch
circuits' verifiers passed the limit where the one-row circuits' did not. compile lays such a
circuit out again without it; ``--verifier-limit 0`` keeps ezkl's first layout for a chain without
the limit, and a verifier still over the limit is an error naming the ways out. Real ezkl on the
tiny model throughout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prover import CompileOptions, compile_model
from prover.core import bundle as b
from prover.core.solidity import EIP170_LIMIT
from prover.errors import CircuitError
from tests.conftest import Compiled
from tests.helpers import zkinfer
from tests.helpers.tiny import TINY_BATCH, TINY_MAX_LOGROWS, write_tiny_model


def _run_args(bundle_root: Path) -> dict[str, object]:
    settings = json.loads((bundle_root / b.SETTINGS).read_text())
    run_args: dict[str, object] = settings["run_args"]
    return run_args


def _compile_args(onnx: Path, sample: Path, calibration: Path, out: Path) -> list[str | Path]:
    """``zkinfer compile`` of the tiny batch model as the ``tiny_batch`` fixture compiles it."""
    return [
        *("compile", onnx, "--sample", sample, "--calibration", calibration, "--out", out),
        *("--batch", str(TINY_BATCH), "--max-logrows", str(TINY_MAX_LOGROWS), "--dev-srs"),
    ]


def test_a_batch_bundle_gets_a_verifier_under_eip170_without_freivalds(
    tiny_batch: Compiled,
) -> None:
    manifest = tiny_batch.bundle.manifest
    assert manifest.verifier.runtime_size <= EIP170_LIMIT
    assert _run_args(tiny_batch.bundle.root)["disable_freivalds"] is True
    # the default limit is not recorded: model ids of bundles that always fitted stay the same
    assert "verifier_limit" not in manifest.run_args.to_json()


def test_a_one_row_bundle_keeps_ezkls_layout(tiny: Compiled) -> None:
    assert tiny.bundle.manifest.verifier.runtime_size <= EIP170_LIMIT
    assert _run_args(tiny.bundle.root)["disable_freivalds"] is False


def test_verifier_limit_0_keeps_the_oversize_verifier_and_is_part_of_the_model_id(
    tiny_batch: Compiled, tmp_path: Path
) -> None:
    onnx, sample, calibration = write_tiny_model(tmp_path / "model", batch=TINY_BATCH)
    out = tmp_path / "bundle"
    args = _compile_args(onnx, sample, calibration, out)
    kept = zkinfer(*args, "--verifier-limit", "0", "--json")
    assert kept.code == 0, kept.stderr
    assert kept.json["verifier_runtime_size"] > EIP170_LIMIT
    assert "over EIP-170's limit" in kept.stderr  # still said, as a warning
    assert _run_args(out)["disable_freivalds"] is False
    manifest = b.load_bundle(out).manifest
    assert manifest.run_args.to_json()["verifier_limit"] == 0
    assert manifest.model_id != tiny_batch.bundle.model_id

    # the default limit does not reuse it: another circuit is asked for
    again = zkinfer(*args)
    assert again.code == 2
    assert "verifier_limit 0 (asked now: the default)" in again.stderr
    assert "--force" in again.stderr


def test_a_limit_no_layout_meets_is_an_error_naming_the_ways_out(tmp_path: Path) -> None:
    onnx, sample, calibration = write_tiny_model(tmp_path / "model", batch=TINY_BATCH)
    out = tmp_path / "bundle"
    args = _compile_args(onnx, sample, calibration, out)
    result = zkinfer(*args, "--verifier-limit", "4000")
    assert result.code == 3, result.stderr
    assert "without Freivalds' argument" in result.stderr  # the extra layout is reported
    assert "over the limit of 4,000 bytes asked for" in result.stderr
    assert "--verifier-limit 0" in result.stderr
    assert not out.exists()  # nothing half-written


def test_a_max_logrows_that_holds_calibration_back_is_named(tmp_path: Path) -> None:
    """With hashed inputs at logrows 12 the tiny batch's range checks take 5 lookup columns:
    its verifier is over the limit even without Freivalds' argument, and the error says that a
    larger max_logrows (fewer, longer columns) or no limit is the way out."""
    onnx, sample, calibration = write_tiny_model(tmp_path / "model", batch=2)
    options = CompileOptions(
        dev_srs=True, max_logrows=TINY_MAX_LOGROWS, batch_size=2, input_visibility="hashed"
    )
    out = tmp_path / "bundle"
    with pytest.raises(CircuitError) as caught:
        compile_model(onnx, sample, out, calibration=calibration, options=options)
    assert "without Freivalds' argument" in caught.value.message
    assert f"above {TINY_MAX_LOGROWS}" in str(caught.value.hint)
    assert caught.value.hint_fields == ("max_logrows", "verifier_limit")
    assert not out.exists()
