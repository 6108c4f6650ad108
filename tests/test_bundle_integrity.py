"""The manifest is trusted only where digested files back it; anything else is exit 3."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from prover.core import bundle as b
from prover.core.hashing import sha256_file
from prover.core.manifest import model_id_for
from tests.conftest import Compiled
from tests.helpers import compile_args, zkinfer


def _edited_copy(c: Compiled, tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(c.bundle.root, copy)
    manifest = json.loads((copy / b.MANIFEST).read_text())
    change(manifest)
    (copy / b.MANIFEST).write_text(json.dumps(manifest))
    return copy


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = m
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _recomputed(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """Apply ``change`` and then fix up the model id, so that only deeper checks can object."""

    def both(m: dict[str, Any]) -> None:
        change(m)
        m["model_id"] = model_id_for(
            m["onnx"]["sha256"], m["run_args"], m["calibration_sha256"], m["files"]
        )

    return both


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = m
        for key in parents:
            node = node[key]
        del node[last]

    return change


@pytest.mark.parametrize(
    "change, fragment",
    [
        (_set("circuit.output_scales", [9]), "output scales"),
        (_set("ezkl_version", "22.0.0"), "made with ezkl 22.0.0"),
        (_set("circuit.input_scales", [7]), "input scales"),
        (_set("circuit.logrows", 16), "logrows"),
        (_set("srs.provenance", "ceremony"), "records SRS provenance 'ceremony'"),
        (_set("srs.provenance", "production"), "records SRS provenance 'production'"),
        (_set("circuit.input_types", ["Bogus"]), "input types"),
        (_recomputed(_set("run_args.param_visibility", "hashed")), "visibility"),
        (_set("inputs", [{"name": "input", "shape": [1, 30]}]), "inputs[0] is malformed"),
        (_set("instances.output.offset", 29), "instance layout"),
        (_set("instances.input.visibility", "hashed"), "instance layout"),
        (_set("model_id", "0" * 64), "model_id does not match"),
        (_set("run_args.param_visibility", "hashed"), "model_id does not match"),
        (_drop("instances.output"), "field instances.output.visibility is missing"),
        (_set("proof_bytes", "3072"), "field proof_bytes has the wrong type"),
        (_set("srs.mirror", "https://example.invalid"), "field srs.mirror is not part of"),
        (_set("timings.setup", "fast"), "field timings.setup has the wrong type"),
    ],
)
def test_edited_manifest_is_an_artifact_error(
    mlp: Compiled,
    tmp_path: Path,
    change: Callable[[dict[str, Any]], None],
    fragment: str,
) -> None:
    bundle = _edited_copy(mlp, tmp_path, change)
    result = zkinfer("verify", mlp.proof, "--bundle", bundle, "--json")
    assert result.code == 3, result.stdout + result.stderr
    assert fragment in result.json["error"]["message"]
    assert "Traceback" not in result.stderr


def test_pinned_bundle_digest_accepts_the_bundle_and_refuses_any_other(
    mlp: Compiled, tmp_path: Path
) -> None:
    pinned = mlp.bundle.digest
    ok = zkinfer("verify", mlp.proof, "--bundle", mlp.bundle.root, "--bundle-digest", pinned)
    assert ok.code == 0, ok.stderr
    other = _edited_copy(mlp, tmp_path, _set("created_at", "2000-01-01T00:00:00Z"))
    refused = zkinfer("verify", mlp.proof, "--bundle", other, "--bundle-digest", pinned, "--json")
    assert refused.code == 3
    assert "not the pinned" in refused.json["error"]["message"]


def test_force_replaces_only_a_bundle(tmp_path: Path, mlp: Compiled) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = zkinfer(
        "compile",
        mlp.bundle.path(b.ONNX),
        "--sample",
        mlp.sample,
        "--out",
        folder,
        "--dev-srs",
        "--force",
    )
    assert result.code == 2
    assert "replaces only a zkinfer bundle" in result.stderr
    assert (folder / "notes.txt").read_text() == "keep me"


def test_out_that_is_a_file_is_a_usage_error(tmp_path: Path, mlp: Compiled) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    result = zkinfer(
        "compile", mlp.bundle.path(b.ONNX), "--sample", mlp.sample, "--out", target, "--dev-srs"
    )
    assert result.code == 2 and "is a file" in result.stderr


def test_dev_bundle_is_not_reused_without_dev_srs(mlp: Compiled, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(mlp.bundle.root, copy)
    args = compile_args("breast_cancer_mlp", copy)
    result = zkinfer(*args, "--json", "--srs", copy / b.SRS)
    assert result.code == 0 and result.json["reused"] is True
    no_srs = {"ZKINFER_CACHE_DIR": str(tmp_path / "no-srs")}
    result = zkinfer(*args, "--json", env=no_srs)
    assert result.code == 2 and "this model built on another SRS" in result.stderr
    result = zkinfer(*args, "--json", "--force", env=no_srs)
    assert result.code == 3 and result.json["error"]["type"] == "SrsError"
    assert json.loads((copy / b.MANIFEST).read_text())["model_id"] == mlp.bundle.model_id


def test_consistent_bundle_with_unbound_weights_is_refused(mlp: Compiled, tmp_path: Path) -> None:
    """Even a bundle whose manifest agrees with its settings must bind the weights."""
    copy = tmp_path / "bundle"
    shutil.copytree(mlp.bundle.root, copy)
    settings = json.loads((copy / b.SETTINGS).read_text())
    settings["run_args"]["param_visibility"] = "Private"
    (copy / b.SETTINGS).write_text(json.dumps(settings))
    manifest = json.loads((copy / b.MANIFEST).read_text())
    manifest["files"][b.SETTINGS] = sha256_file(copy / b.SETTINGS)
    manifest["sizes"][b.SETTINGS] = (copy / b.SETTINGS).stat().st_size
    manifest["run_args"]["param_visibility"] = "private"
    manifest["visibility"]["param"] = "private"
    manifest["model_id"] = model_id_for(
        manifest["onnx"]["sha256"],
        manifest["run_args"],
        manifest["calibration_sha256"],
        manifest["files"],
    )
    (copy / b.MANIFEST).write_text(json.dumps(manifest))
    result = zkinfer("verify", mlp.proof, "--bundle", copy, "--json")
    assert result.code == 3
    assert "the weights are not bound" in result.json["error"]["message"]


def test_missing_srs_in_the_bundle_is_exit_3_for_prove_and_verify(
    mlp: Compiled, tmp_path: Path
) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(mlp.bundle.root, copy)
    (copy / b.SRS).unlink()
    commands: list[list[str | Path]] = [
        ["verify", mlp.proof, "--bundle", copy],
        ["prove", copy, "--input", mlp.sample, "--out", tmp_path / "p.json"],
    ]
    for args in commands:
        result = zkinfer(*args, "--json")
        assert result.code == 3 and "kzg.srs: missing" in result.json["error"]["message"]
