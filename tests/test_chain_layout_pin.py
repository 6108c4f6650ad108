"""The chain layer derives registrations, request commitments and outputs from a manifest's
instance layout only after checking it against the files that fix it: a manifest with its input
and output offsets swapped keeps its model id, and would otherwise register (and let requesters
accept) the genuine verifier with a layout under which stored "outputs" are instances the
provider chooses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prover.chain.results import encode_request
from prover.core import bundle as b
from prover.errors import ArtifactError
from tests.conftest import Compiled

REGISTRANT = "0x" + "11" * 20


def _swapped(compiled: Compiled, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(compiled.bundle.root, copy)
    path = copy / b.MANIFEST
    doc = json.loads(path.read_text())
    parts = doc["instances"]
    parts["input"]["offset"], parts["output"]["offset"] = (
        parts["output"]["offset"],
        parts["input"]["offset"],
    )
    doc.pop("slots", None)  # as an older bundle has it: the slots follow the (swapped) layout
    path.write_text(json.dumps(doc, indent=1))
    return copy


def test_a_manifest_with_swapped_instance_offsets_is_refused_before_any_chain_use(
    tiny: Compiled, tmp_path: Path
) -> None:
    copy = _swapped(tiny, tmp_path)
    # the swap alone: the manifest still parses and names the same model
    assert b.load_bundle(copy).model_id == tiny.bundle.model_id
    assert encode_request(tiny.bundle.root, tiny.sample, REGISTRANT)["input_commitment"]
    with pytest.raises(ArtifactError, match=r"settings\.json"):
        encode_request(copy, tiny.sample, REGISTRANT)
    with pytest.raises(ArtifactError, match=r"settings\.json"):
        b.load_bundle(copy, check=b.CHAIN_FILES)
