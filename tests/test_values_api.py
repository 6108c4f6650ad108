"""Values first: proving and verifying parsed inputs and proof documents, without files, gives
the same results and the same refusals as the file paths."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from prover import InputError, prove, prove_values, verify, verify_values
from tests.conftest import Compiled
from tests.helpers import write_json


def _values(c: Compiled) -> list[list[float]]:
    values: list[list[float]] = json.loads(c.sample.read_text())["input_data"]
    return values


def _other(values: list[list[float]]) -> list[list[float]]:
    return [[v + 0.25 for v in values[0]], *values[1:]]


def test_prove_values_matches_proving_the_input_file(tiny: Compiled, tmp_path: Path) -> None:
    from_file = prove(tiny.bundle.root, tiny.sample, tmp_path / "p.json")
    for given in (_values(tiny), {"input_data": _values(tiny)}, {"input": _values(tiny)[0]}):
        proven = prove_values(tiny.bundle.root, given)
        assert proven.outputs == from_file.outputs
        assert proven.circuit_outputs == from_file.circuit_outputs
        assert proven.onnxruntime_outputs == from_file.onnxruntime_outputs
        assert proven.document["instances"] == from_file.document["instances"]
        assert proven.document["zkinfer"]["outputs"] == proven.outputs
    # the file path writes exactly the document it returns
    assert json.loads((tmp_path / "p.json").read_text()) == from_file.document
    assert from_file.to_json()["proof"] == str(tmp_path / "p.json")
    assert "proof" not in proven.summary() and "document" not in proven.summary()


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (lambda v: [[v[0][0], math.nan, *v[0][2:]]], "value 1 is nan"),
        (lambda v: [[*v[0], 0.5]], "but the model expects shape"),
        (lambda v: [[1e9, *v[0][1:]]], "far outside the calibrated range"),
        (lambda v: [[str(v[0][0]), *v[0][1:]]], "is not a number"),
    ],
    ids=["nan", "shape", "range", "string"],
)
def test_bad_values_are_refused_as_the_same_input_file_is(
    tiny: Compiled, tmp_path: Path, bad: Any, why: str
) -> None:
    values = bad(_values(tiny))
    path = write_json(tmp_path / "bad.json", {"input_data": values})
    with pytest.raises(InputError, match=why) as from_file:
        prove(tiny.bundle.root, path, tmp_path / "p.json")
    with pytest.raises(InputError, match=why) as from_values:
        prove_values(tiny.bundle.root, values)
    assert str(from_file.value) == f"{path}: " + str(from_values.value).removeprefix("input: ")
    assert not (tmp_path / "p.json").exists()


def test_out_of_range_values_are_proven_only_when_allowed(tiny: Compiled) -> None:
    values = [[4.0, *_values(tiny)[0][1:]]]  # accepted range: [-3, 3]
    with pytest.raises(InputError, match="calibrated range"):
        prove_values(tiny.bundle.root, values)
    proven = prove_values(tiny.bundle.root, values, allow_out_of_range=True)
    assert verify_values(proven.document, tiny.bundle.root, values=values).valid


def test_a_proof_document_verifies_against_its_values_and_not_others(tiny: Compiled) -> None:
    document = json.loads(tiny.proof.read_text())
    values = _values(tiny)
    verdict = verify_values(document, tiny.bundle.root, values=values)
    from_files = verify(tiny.proof, tiny.bundle.root, input_path=tiny.sample)
    assert verdict.valid and from_files.valid
    assert verdict.outputs == from_files.outputs and verdict.inputs == from_files.inputs
    assert verdict.to_json()["proof"] is None

    wrong = verify_values(document, tiny.bundle.root, values=_other(values))
    assert not wrong.valid
    assert wrong.reason == "the proof is not about the input given"
    assert verify_values(document, tiny.bundle.root).valid  # no input: the proof alone

    with pytest.raises(InputError, match="input: input 0 value 0 is inf"):
        verify_values(document, tiny.bundle.root, values=[[math.inf, *values[0][1:]]])


def test_a_tampered_or_malformed_document_is_invalid_not_an_error(tiny: Compiled) -> None:
    document = json.loads(tiny.proof.read_text())
    flipped = {**document, "proof": [document["proof"][0] ^ 1, *document["proof"][1:]]}
    flipped.pop("hex_proof", None)
    assert not verify_values(flipped, tiny.bundle.root, values=_values(tiny)).valid
    junk: Any
    for junk in ([], "proof", {"instances": [[]], "proof": []}):
        verdict = verify_values(junk, tiny.bundle.root, values=_values(tiny))
        assert not verdict.valid and verdict.reason.startswith("malformed proof")


def test_hashed_inputs_are_checked_against_values_by_their_poseidon_hash(
    mlp_hashed: Compiled,
) -> None:
    document = json.loads(mlp_hashed.proof.read_text())
    values = _values(mlp_hashed)
    assert verify_values(document, mlp_hashed.bundle.root, values=values).valid
    wrong = verify_values(document, mlp_hashed.bundle.root, values=_other(values))
    assert not wrong.valid and "not about the input given" in wrong.reason
