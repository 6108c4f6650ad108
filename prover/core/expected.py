"""Inputs for a bundle: loading them checked, and the input instances a proof over them carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prover.core import bundle as b
from prover.core import ezkl_backend
from prover.core.dtypes import check_kinds, kind_of_ezkl_type
from prover.core.inputs import inputs_from_document, read_input_document, validate_inputs
from prover.core.manifest import Manifest
from prover.core.slot_graph import to_slot_inputs

__all__ = [
    "InputValues",
    "check_bundle_inputs",
    "check_values",
    "expected_input_instances",
    "input_felts",
    "load_bundle_inputs",
]


#: What a values-first call accepts as an input: the parsed input document
#: (``{"input_data": [[...]]}`` or ``{"input": nested}``) or its ``input_data`` list itself.
InputValues = dict[str, Any] | list[Any]


def load_bundle_inputs(
    bundle: b.Bundle, input_path: Path, *, allow_out_of_range: bool = False
) -> list[list[float]]:
    """Load an input file and check it against the bundle's shapes, finiteness and ranges."""
    return check_bundle_inputs(
        bundle,
        read_input_document(Path(input_path)),
        where=str(Path(input_path)),
        allow_out_of_range=allow_out_of_range,
    )


def check_bundle_inputs(
    bundle: b.Bundle,
    values: InputValues,
    *,
    where: str = "input",
    allow_out_of_range: bool = False,
) -> list[list[float]]:
    """Check input values against the bundle as an input file is checked; the flat inputs.

    Format, shape, NaN/infinity, calibrated range (unless ``allow_out_of_range``) and element
    kinds; errors are :class:`~prover.errors.InputError` naming ``where``.
    """
    m = bundle.manifest
    shapes = [i.shape for i in m.inputs]
    return check_values(m, values, shapes, where=where, allow_out_of_range=allow_out_of_range)


def check_values(
    manifest: Manifest,
    values: InputValues,
    shapes: list[tuple[int, ...]],
    *,
    where: str,
    allow_out_of_range: bool,
) -> list[list[float]]:
    """Check input values of the given ``shapes`` (the whole batch's, or one slot's) against the
    manifest's ranges and kinds; the flat inputs, or :class:`~prover.errors.InputError`."""
    flat = inputs_from_document(values, where, len(manifest.inputs), shapes)
    ranges = None if allow_out_of_range else manifest.input_ranges
    validate_inputs(flat, shapes, ranges, where)
    kinds = [kind_of_ezkl_type(t) for t in manifest.circuit.input_types]
    check_kinds(flat, kinds, [i.name for i in manifest.inputs], where)
    return flat


def input_felts(bundle: b.Bundle, values: list[list[float]]) -> list[list[str]]:
    """``values`` quantized as the circuit sees them: one list of hex felts per model input."""
    circuit = bundle.manifest.circuit
    scales = circuit.input_scales
    types = circuit.input_types or ("F32",) * len(scales)
    return [
        ezkl_backend.float_to_felts(v, s, t) for v, s, t in zip(values, scales, types, strict=True)
    ]


def expected_input_instances(bundle: b.Bundle, values: list[list[float]]) -> list[str]:
    """The input part of the instances that a proof over ``values`` must carry (hex felts):
    the quantized values when inputs are public, else one Poseidon hash per input.

    For a bundle compiled from the slotted graph (hashed inputs in a batch), ``values`` may be
    the whole batch's input or one slot's: each row (one slot's share of an input) is hashed on
    its own, slot-major, so one slot's input gives that slot's hashes, as a batch-1 bundle of
    the same model would.
    """
    m = bundle.manifest
    felts = input_felts(bundle, values)
    if m.instances.input.visibility == "public":
        return [f for group in felts for f in group]
    if m.slotted_inputs:
        felts = to_slot_inputs(felts, [t.size // m.batch_size for t in m.inputs], m.batch_size)
        felts = [group for group in felts if group]  # one slot's input fills slot 0 only
    # ezkl hashes each graph input separately with its Poseidon chip
    return [h for group in felts for h in ezkl_backend.poseidon_hash(group)]
