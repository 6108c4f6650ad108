"""Property: no single mutation of a proof's bytes or instances verifies (hundreds per run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prover import verify
from prover.core.fields import FIELD_MODULUS, felt_from_hex, felt_to_hex
from tests.conftest import Compiled
from tests.helpers import resync_hex_proof

_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _check_rejected(c: Compiled, doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc))
    result = verify(path, c.bundle.root)
    assert not result.valid, f"a mutated proof verified: {result}"


@_SETTINGS
@given(data=st.data())
def test_no_proof_byte_mutation_verifies(
    mlp: Compiled, tmp_path: Path, data: st.DataObject
) -> None:
    doc = json.loads(mlp.proof.read_text())
    n = len(doc["proof"])
    position = data.draw(st.integers(0, n - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor mask")
    doc["proof"][position] ^= mask
    resync_hex_proof(doc)
    _check_rejected(mlp, doc, tmp_path / "mutated.json")


@_SETTINGS
@given(data=st.data())
def test_no_instance_mutation_verifies(mlp: Compiled, tmp_path: Path, data: st.DataObject) -> None:
    doc = json.loads(mlp.proof.read_text())
    instances = doc["instances"][0]
    index = data.draw(st.integers(0, len(instances) - 1), label="instance")
    delta = data.draw(
        st.one_of(st.integers(1, 2**16), st.integers(1, FIELD_MODULUS - 1)), label="delta"
    )
    instances[index] = felt_to_hex(felt_from_hex(instances[index]) + delta)
    _check_rejected(mlp, doc, tmp_path / "mutated.json")
