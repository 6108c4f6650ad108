"""Slots of a batch bundle: one request's input and outputs inside a proof of N of them.

A bundle compiled with a batch size N has N slots (row s of every tensor is slot s; see
:mod:`prover.core.slot_layout` for where each sits in the instances). This module checks one
slot's input, builds the whole batch's input from per-slot inputs (an empty slot gets the fixed
padding input), and decodes one slot's outputs from a proof's instances.

Hashed inputs in a batch are bound per slot too: ``compile`` hands ezkl the slotted graph (one
graph input per slot, :mod:`prover.core.slot_graph`), so each slot's input has its own Poseidon
hash. Bundles compiled before that have no slots: ezkl hashed a whole input tensor, every slot of
it together, into one instance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from prover.core.bundle import Bundle
from prover.core.dtypes import kind_of_ezkl_type
from prover.core.expected import InputValues, check_values
from prover.core.manifest import Manifest
from prover.core.slot_layout import Segment, SlotLayout, slots_unavailable_reason
from prover.core.witness import felts_to_floats
from prover.errors import UsageError

__all__ = [
    "Segment",
    "SlotLayout",
    "batch_values",
    "check_slot_inputs",
    "padding_values",
    "require_slots",
    "slot_input_shapes",
    "slot_inputs",
    "slot_outputs",
]


def require_slots(manifest: Manifest) -> SlotLayout:
    """The manifest's slot layout; :class:`~prover.errors.UsageError` (field ``slot``) saying why
    the bundle has none."""
    layout = manifest.slots
    if layout is None:
        why = slots_unavailable_reason(
            manifest.inputs,
            manifest.outputs,
            manifest.instances,
            manifest.batch_size,
            slotted_inputs=manifest.slotted_inputs,
        )
        raise UsageError(
            f"this bundle of batch size {manifest.batch_size} has no slots: {why}",
            field="slot",
            hint="prove and verify the batch as a whole",
        )
    return layout


def slot_input_shapes(manifest: Manifest) -> list[tuple[int, ...]]:
    """Each input's shape for one slot: the batch's shape with a leading dimension of 1 (a batch
    of 1 keeps its shapes). Raises :class:`~prover.errors.UsageError` for a bundle without
    slots."""
    layout = require_slots(manifest)
    if layout.count == 1:
        return [t.shape for t in manifest.inputs]
    return [(1, *t.shape[1:]) for t in manifest.inputs]


def check_slot_inputs(
    bundle: Bundle | Manifest,
    values: InputValues,
    *,
    where: str = "input",
    allow_out_of_range: bool = False,
) -> list[list[float]]:
    """One slot's input checked exactly as a whole input is (format, shape for one slot,
    NaN/infinity, calibrated range unless ``allow_out_of_range``, integer kinds): one flat list
    per model input, or :class:`~prover.errors.InputError` naming ``where``.

    ``values`` takes the forms of an input file: ``{"input_data": [[...] per input]}``,
    ``{"input": nested}`` or the bare list of per-input lists.
    """
    m = bundle.manifest if isinstance(bundle, Bundle) else bundle
    shapes = slot_input_shapes(m)
    return check_values(m, values, shapes, where=where, allow_out_of_range=allow_out_of_range)


def padding_values(manifest: Manifest) -> list[list[float]]:
    """The fixed input of an empty slot: every element at the midpoint of its input's accepted
    range (rounded for integer and boolean inputs). Deterministic and always in range."""
    shapes = slot_input_shapes(manifest)
    kinds = [kind_of_ezkl_type(t) for t in manifest.circuit.input_types] or ["float"] * len(shapes)
    out = []
    # Manifest.from_json requires a range per input, so input_ranges has one for each
    for r, shape, kind in zip(manifest.input_ranges, shapes, kinds, strict=True):
        mid = (r.accepted_min + r.accepted_max) / 2
        value = float(round(mid)) if kind != "float" else float(mid)
        out.append([value] * math.prod(shape))
    return out


def batch_values(
    manifest: Manifest, slots: Sequence[list[list[float]] | None]
) -> list[list[float]]:
    """The whole batch's input (ezkl's ``input_data``) from one checked input per slot
    (``None``: padding). Raises :class:`~prover.errors.UsageError` unless there is exactly one
    entry per slot."""
    layout = require_slots(manifest)
    if len(slots) != layout.count:
        raise UsageError(
            f"{len(slots)} slot inputs given for a bundle of {layout.count} slot(s): pass one "
            "per slot",
        )
    padding = padding_values(manifest)
    rows = [padding if values is None else values for values in slots]
    # row-major with the batch leading: each tensor is its slots' rows one after the other
    return [[v for row in rows for v in row[t]] for t in range(len(manifest.inputs))]


def slot_inputs(
    instances: Sequence[str], manifest: Manifest, slot: int
) -> list[list[float]] | None:
    """Slot ``slot``'s (quantized) inputs decoded from a proof's instances, one flat list per
    input; ``None`` when inputs are hashed (a batch of 1 only). Raises
    :class:`~prover.errors.UsageError` for a slot out of range or a bundle without slots."""
    layout = require_slots(manifest)
    segments = layout.input[layout.check_slot(slot)]
    if manifest.instances.input.visibility != "public":
        return None
    scales = manifest.circuit.input_scales
    return [
        felts_to_floats(seg.of(instances), sc) for seg, sc in zip(segments, scales, strict=True)
    ]


def slot_outputs(
    instances: Sequence[str], manifest: Manifest, slot: int
) -> list[list[float]] | None:
    """Slot ``slot``'s outputs decoded from a proof's instances (hex felts), one flat list per
    output; ``None`` when outputs are hashed. Raises :class:`~prover.errors.UsageError` for a
    slot out of range or a bundle without slots."""
    layout = require_slots(manifest)
    if layout.output is None:
        layout.check_slot(slot)
        return None
    scales = manifest.circuit.output_scales
    return [
        felts_to_floats(seg.of(instances), scale)
        for seg, scale in zip(layout.output[layout.check_slot(slot)], scales, strict=True)
    ]
