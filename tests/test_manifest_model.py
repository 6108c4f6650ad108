"""The typed manifest reads back exactly the document compile wrote, and refuses anything else."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from prover.core import bundle as b
from prover.core.hashing import canonical_json, sha256_json
from prover.core.manifest import Manifest
from prover.errors import ArtifactError
from tests.conftest import Compiled


def _raw(c: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(c.bundle.path(b.MANIFEST).read_text())
    return doc


@pytest.mark.parametrize("which", ["mlp", "mlp_hashed"])
def test_to_json_gives_back_the_written_manifest_and_digest(
    which: str, request: pytest.FixtureRequest
) -> None:
    compiled: Compiled = request.getfixturevalue(which)
    raw = _raw(compiled)
    manifest = Manifest.from_json(raw)
    assert canonical_json(manifest.to_json()) == canonical_json(raw)
    assert manifest.digest == compiled.bundle.digest == sha256_json(raw)


def test_integer_range_values_stay_integers_so_the_digest_is_kept(mlp: Compiled) -> None:
    raw = _raw(mlp)
    raw["inputs"][0]["range"]["calibrated"] = [-3, 14]
    manifest = Manifest.from_json(raw)
    assert canonical_json(manifest.to_json()) == canonical_json(raw)
    assert b'"calibrated":[-3,14]' in canonical_json(manifest.to_json())


@pytest.mark.parametrize(
    "path, value, fragment",
    [
        (("signature",), "0x00", "field signature is not part of"),
        (("instances", "input", "hash"), "x", "field instances.input.hash is not part of"),
        (("outputs", 0, "range"), {}, "field outputs.0.range is not part of"),
        (("srs", "note"), 7, "field srs.note has the wrong type"),
        (("onnx", "ops", 0), 7, "field onnx.ops[0] has the wrong type"),
        (("variables", 0), ["batch_size"], "field variables[0] has the wrong type"),
        (("format",), "zkinfer-bundle/2", "not a zkinfer-bundle/1 manifest"),
    ],
)
def test_unknown_or_mistyped_fields_are_refused(
    mlp: Compiled, path: tuple[str | int, ...], value: Any, fragment: str
) -> None:
    raw = _raw(mlp)
    node: Any = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ArtifactError, match=re.escape(fragment)):
        Manifest.from_json(raw, "m.json")


def test_the_manifest_cannot_be_changed_in_place(mlp: Compiled) -> None:
    manifest = mlp.bundle.manifest
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.proof_bytes = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        manifest.files[b.VK] = "0" * 64  # type: ignore[index]
    assert manifest.instances.part("output").of(list(range(40))) == [30, 31]
