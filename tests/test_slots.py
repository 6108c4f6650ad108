"""Slots of a batch bundle: where each request sits in the instances, its input checked on its
own, a partial batch padded, and one slot's input and outputs verified inside a batch proof."""

from __future__ import annotations

import json
from typing import Any

from prover.core import bundle as b
from prover.core.slot_layout import Segment
from prover.core.slots import batch_values, padding_values, slot_input_shapes, slot_outputs
from tests.conftest import Compiled
from tests.helpers.tiny import TINY_BATCH, tiny_row


def _raw(c: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(c.bundle.path(b.MANIFEST).read_text())
    return doc


def test_a_public_batch_bundle_has_one_contiguous_run_per_slot(tiny_batch: Compiled) -> None:
    m = tiny_batch.bundle.manifest
    slots = m.slots
    assert slots is not None and slots.count == TINY_BATCH
    # 4 slots of 3 inputs (instances 0-11), then 4 slots of 2 outputs (12-19)
    assert slots.input == tuple((Segment(3 * s, 3),) for s in range(TINY_BATCH))
    assert slots.output == tuple((Segment(12 + 2 * s, 2),) for s in range(TINY_BATCH))
    assert slots.contiguous
    assert (slots.per_slot_input_count, slots.per_slot_output_count) == (3, 2)
    assert _raw(tiny_batch)["slots"] == slots.to_json()
    assert slot_input_shapes(m) == [(1, 3)]


def test_the_sample_proof_holds_each_row_in_its_slot(tiny_batch: Compiled) -> None:
    m = tiny_batch.bundle.manifest
    proof = json.loads(tiny_batch.proof.read_text())
    instances = proof["instances"][0]
    whole = proof["zkinfer"]["outputs"][0]
    for s in range(TINY_BATCH):
        outputs = slot_outputs(instances, m, s)
        assert outputs == [whole[2 * s : 2 * s + 2]]
    rows = [[tiny_row(s)] for s in range(TINY_BATCH)]
    assert batch_values(m, rows) == [[v for s in range(TINY_BATCH) for v in tiny_row(s)]]
    padded = batch_values(m, [rows[0], None, None, None])
    assert padded[0][3:] == padding_values(m)[0] * 3
