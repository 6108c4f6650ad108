"""Slots of a batch bundle: where each request sits in the instances, its input checked on its
own, a partial batch padded, and one slot's input and outputs verified inside a batch proof."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from prover import (
    CompileOptions,
    InputError,
    ProvenBatch,
    UsageError,
    compile_model,
    prove_batch,
    prove_values,
    verify,
    verify_values,
)
from prover.core import bundle as b
from prover.core.hashing import sha256_json
from prover.core.manifest import InstanceLayout, InstancePart, Tensor
from prover.core.slot_layout import Segment, compute_slots, slots_unavailable_reason
from prover.core.slots import (
    batch_values,
    check_slot_inputs,
    padding_values,
    slot_input_shapes,
    slot_outputs,
)
from prover.errors import ArtifactError
from tests.conftest import Compiled
from tests.helpers import write_json, zkinfer
from tests.helpers.tiny import (
    TINY_BATCH,
    TINY_MAX_LOGROWS,
    tiny_input,
    tiny_row,
    write_two_output_model,
)


def _raw(bundle: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((bundle / b.MANIFEST).read_text())
    return doc


def _gemm(row: list[float]) -> list[float]:
    """The tiny model's output for one row, in exact arithmetic."""
    w, bias = [[0.5, -0.25], [0.125, 0.75], [-0.5, 0.25]], [0.1, -0.1]
    return [sum(row[i] * w[i][j] for i in range(3)) + bias[j] for j in range(2)]


def _close(a: list[float], b: list[float], scale: int) -> bool:
    """Equal within the quantization of inputs and weights at ``scale`` (the input scale)."""
    return all(abs(x - y) <= 4 * 2.0**-scale for x, y in zip(a, b, strict=True))


def _compile(tmp: Path, onnx: Path, sample: Path, cal: Path, **options: Any) -> Path:
    compile_model(
        onnx,
        sample,
        tmp / "bundle",
        calibration=cal,
        options=CompileOptions(dev_srs=True, max_logrows=TINY_MAX_LOGROWS, **options),
    )
    return tmp / "bundle"


@pytest.fixture(scope="module")
def padded(tiny_batch: Compiled) -> ProvenBatch:
    """A batch proof of tiny inputs 5 and 6 in slots 0 and 2; slots 1 and 3 are padding."""
    return prove_batch(tiny_batch.bundle, [tiny_input(5), None, tiny_input(6)])


# -- layout ---------------------------------------------------------------------------------


def test_a_public_batch_bundle_has_one_contiguous_run_per_slot(tiny_batch: Compiled) -> None:
    m = tiny_batch.bundle.manifest
    slots = m.slots
    assert slots is not None and slots.count == TINY_BATCH
    # 4 slots of 3 inputs (instances 0-11), then 4 slots of 2 outputs (12-19)
    assert slots.input == tuple((Segment(3 * s, 3),) for s in range(TINY_BATCH))
    assert slots.output == tuple((Segment(12 + 2 * s, 2),) for s in range(TINY_BATCH))
    assert slots.contiguous
    assert (slots.per_slot_input_count, slots.per_slot_output_count) == (3, 2)
    assert _raw(tiny_batch.bundle.root)["slots"] == slots.to_json()
    assert slot_input_shapes(m) == [(1, 3)]


def test_a_batch_1_bundle_is_one_slot_covering_every_instance(tiny: Compiled) -> None:
    slots = tiny.bundle.manifest.slots
    assert slots is not None and slots.count == 1 and slots.contiguous
    assert (slots.input, slots.output) == (((Segment(0, 3),),), ((Segment(3, 2),),))
    instances = json.loads(tiny.proof.read_text())["instances"][0]
    assert slots.input_instances(instances, 0) == instances[:3]
    assert (
        slot_outputs(instances, tiny.bundle.manifest, 0)
        == verify(tiny.proof, tiny.bundle.root).outputs
    )


def test_the_sample_proof_holds_each_row_in_its_slot(tiny_batch: Compiled) -> None:
    m = tiny_batch.bundle.manifest
    instances = json.loads(tiny_batch.proof.read_text())["instances"][0]
    scale = m.circuit.input_scales[0]
    for s in range(TINY_BATCH):
        outputs = slot_outputs(instances, m, s)
        assert outputs is not None and _close(outputs[0], _gemm(tiny_row(s)), scale)
    rows = [[tiny_row(s)] for s in range(TINY_BATCH)]
    assert batch_values(m, rows) == [[v for s in range(TINY_BATCH) for v in tiny_row(s)]]
    with pytest.raises(UsageError, match="3 slot inputs given for a bundle of 4"):
        batch_values(m, rows[:3])


def test_two_outputs_make_slots_that_are_not_one_run_and_still_decode(tmp_path: Path) -> None:
    bundle = _compile(tmp_path, *write_two_output_model(tmp_path / "m", 2), batch_size=2)
    m = b.load_bundle(bundle).manifest
    slots = m.slots
    assert slots is not None and not slots.contiguous
    # inputs 0-5; then y of both slots (6-9), then z of both slots (10-15)
    assert slots.output == (
        (Segment(6, 2), Segment(10, 3)),
        (Segment(8, 2), Segment(13, 3)),
    )
    batch = prove_batch(bundle, [tiny_input(3), tiny_input(8)])
    scale = m.circuit.input_scales[0]
    for s, i in enumerate((3, 8)):
        y, z = batch.slot_outputs[s] or []
        assert _close(y, _gemm(tiny_row(i)), scale)
        assert _close(z, [v / 2 for v in tiny_row(i)], scale)
    assert batch.padding == ()


def test_hashed_inputs_of_a_batch_compiled_without_the_slotted_graph_have_no_slots() -> None:
    # such a bundle (compiled before the slotted graph) has one hash over every slot's input;
    # tests/test_slot_hash.py covers the bundles compiled now, with one hash per slot
    x, y = Tensor("x", (2, 3)), Tensor("y", (2, 2))
    layout = InstanceLayout(
        input=InstancePart("hashed", 0, 1), output=InstancePart("public", 1, 4), total=5
    )
    assert compute_slots((x,), (y,), layout, 2) is None
    why = slots_unavailable_reason((x,), (y,), layout, 2)
    assert why is not None and "hashed a whole input tensor" in why and "recompile" in why
    slotted = InstanceLayout(
        input=InstancePart("hashed", 0, 2), output=InstancePart("public", 2, 4), total=6
    )
    slots = compute_slots((x,), (y,), slotted, 2, slotted_inputs=True)
    assert slots is not None and slots.contiguous
    assert slots.input == ((Segment(0, 1),), (Segment(1, 1),))


# -- the manifest's record ------------------------------------------------------------------


def _copy(c: Compiled, tmp_path: Path) -> Path:
    return Path(shutil.copytree(c.bundle.root, tmp_path / "bundle"))


def test_a_recorded_layout_that_disagrees_with_the_shapes_is_refused(
    tiny_batch: Compiled, tmp_path: Path
) -> None:
    bundle = _copy(tiny_batch, tmp_path)
    raw = _raw(bundle)
    inputs = raw["slots"]["input"]
    inputs[0], inputs[1] = inputs[1], inputs[0]
    write_json(bundle / b.MANIFEST, raw)
    with pytest.raises(ArtifactError, match=r"slots .* disagree with the shapes"):
        b.load_bundle(bundle)
    raw["slots"] = {"count": 4, "input": "x", "output": None}
    write_json(bundle / b.MANIFEST, raw)
    with pytest.raises(ArtifactError, match="field slots is malformed"):
        b.load_bundle(bundle)


def test_a_bundle_compiled_before_slots_reads_them_and_keeps_its_digest(
    tiny_batch: Compiled, tmp_path: Path
) -> None:
    bundle = _copy(tiny_batch, tmp_path)
    raw = _raw(bundle)
    del raw["slots"]
    write_json(bundle / b.MANIFEST, raw)
    loaded = b.load_bundle(bundle, check=b.VERIFY_FILES)
    assert loaded.manifest.slots == tiny_batch.bundle.manifest.slots
    assert "slots" not in loaded.manifest.to_json()
    assert loaded.digest == sha256_json(raw) != tiny_batch.bundle.digest
    result = verify(tiny_batch.proof, bundle, slot=2)
    assert result.valid and result.slot == 2


# -- per-slot inputs and padding ------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"input_data": [[math.nan, 0.1, -0.3]]}, "value 0 is nan"),
        ({"input_data": [tiny_row(1) + tiny_row(2)]}, "expects shape \\[1, 3\\]"),
        ({"input": [[1.0, 2.0]]}, "has shape \\[1, 2\\] but the model expects \\[1, 3\\]"),
        ({"input_data": [[1e9, 0.1, -0.3]]}, "far outside the calibrated range"),
    ],
    ids=["nan", "two-rows", "nested-shape", "range"],
)
def test_a_bad_slot_input_is_refused_before_proving(
    tiny_batch: Compiled, values: Any, why: str
) -> None:
    with pytest.raises(InputError, match=why):
        check_slot_inputs(tiny_batch.bundle, values)
    with pytest.raises(InputError, match=f"input of slot 1: .*{why}"):
        prove_batch(tiny_batch.bundle, [tiny_input(0), values])


def test_every_accepted_form_of_one_slot_reads_the_same(tiny_batch: Compiled) -> None:
    row = tiny_row(4)
    for given in ({"input_data": [row]}, {"input": [row]}, {"input": row}, [row]):
        assert check_slot_inputs(tiny_batch.bundle.manifest, given) == [row]


def test_padding_is_the_midpoint_of_the_accepted_range(tiny_batch: Compiled) -> None:
    m = tiny_batch.bundle.manifest
    (r,) = m.input_ranges
    assert padding_values(m) == [[(r.accepted_min + r.accepted_max) / 2] * 3]
    assert check_slot_inputs(m, padding_values(m)) == padding_values(m)


def test_a_partial_batch_proves_each_slot_as_a_batch_1_proof_does(
    padded: ProvenBatch, tiny: Compiled, tiny_batch: Compiled
) -> None:
    assert padded.padding == (1, 3)
    assert padded.document["zkinfer"]["padding"] == [1, 3]
    scales = (c.bundle.manifest.circuit.input_scales[0] for c in (tiny, tiny_batch))
    scale = min(scales)
    for slot, i in ((0, 5), (2, 6)):
        alone = prove_values(tiny.bundle, tiny_input(i)).outputs
        got = padded.slot_outputs[slot]
        assert alone is not None and got is not None
        assert _close(got[0], alone[0], scale) and _close(got[0], _gemm(tiny_row(i)), scale)
    pad_out = padded.slot_outputs[1]
    assert pad_out is not None and pad_out == padded.slot_outputs[3]
    assert _close(pad_out[0], _gemm(padding_values(tiny_batch.bundle.manifest)[0]), scale)
    assert padded.summary()["padding"] == [1, 3]


# -- verifying one slot ---------------------------------------------------------------------


def test_verify_values_checks_one_slot_of_the_batch(
    padded: ProvenBatch, tiny_batch: Compiled
) -> None:
    root = tiny_batch.bundle.root
    right = verify_values(padded.document, root, values=tiny_input(6), slot=2)
    assert right.valid and right.slot == 2 and right.outputs == padded.slot_outputs[2]
    assert right.to_json()["slot"] == 2
    wrong_slot = verify_values(padded.document, root, values=tiny_input(6), slot=0)
    assert not wrong_slot.valid and "in slot 0" in wrong_slot.reason
    assert wrong_slot.slot == 0 and wrong_slot.outputs is None
    padding = verify_values(
        padded.document, root, values=padding_values(tiny_batch.bundle.manifest), slot=3
    )
    assert padding.valid


def test_verify_slot_on_the_command_line(
    padded: ProvenBatch, tiny_batch: Compiled, tmp_path: Path
) -> None:
    root = tiny_batch.bundle.root
    proof = write_json(tmp_path / "batch.json", padded.document)
    mine = write_json(tmp_path / "mine.json", tiny_input(5))
    other = write_json(tmp_path / "other.json", tiny_input(7))

    ok = zkinfer("verify", proof, "--bundle", root, "--slot", "0", "--input", mine, "--json")
    assert ok.code == 0, ok.stderr
    assert ok.json["valid"] and ok.json["slot"] == 0
    assert ok.json["outputs"] == padded.slot_outputs[0]

    outputs_only = zkinfer("verify", proof, "--bundle", root, "--slot", "2", "--json")
    assert outputs_only.code == 0 and outputs_only.json["outputs"] == padded.slot_outputs[2]

    for slot, given in (("2", mine), ("0", other)):
        bad = zkinfer("verify", proof, "--bundle", root, "--slot", slot, "--input", given, "--json")
        assert bad.code == 1 and not bad.json["valid"]
        assert f"in slot {slot}" in bad.json["reason"] and bad.json["slot"] == int(slot)

    for slot in ("4", "-1"):
        usage = zkinfer("verify", proof, "--bundle", root, "--slot", slot, "--json")
        assert usage.code == 2
        assert usage.json["error"]["message"].startswith(f"--slot {slot}: out of range")
        assert "4 slot(s)" in usage.json["error"]["message"]

    human = zkinfer("verify", proof, "--bundle", root, "--slot", "0", "--input", mine)
    assert human.code == 0 and "proven outputs of slot 0" in human.stderr + human.stdout

    again = write_json(tmp_path / "again.json", padded.document)
    many = zkinfer("verify", proof, again, "--bundle", root, "--slot", "2", "--input", mine)
    assert many.code == 1 and many.stdout.count("in slot 2") + many.stderr.count("in slot 2") == 2
