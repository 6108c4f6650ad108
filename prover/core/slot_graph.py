"""The *slotted* graph: one graph input per slot, so that ezkl hashes each slot's input alone.

ezkl hashes a whole input tensor into one Poseidon instance. A batch bundle with hashed inputs
would then carry one hash over every slot's input together, and no request's input could be
checked on its own. So before ezkl sees such a model, ``compile`` rewrites its graph: each input
``x`` of shape ``[N, ...]`` becomes N inputs ``x__slot0`` .. ``x__slot{N-1}`` of shape
``[1, ...]``, listed slot-major (every input of slot 0, then of slot 1, ...), joined by a
``Concat`` on axis 0 into the original ``x``; the rest of the graph and its outputs are untouched.
ezkl then emits one Poseidon instance per (slot, input), slot 0's first.

The bundle keeps the original ONNX (what the model id and ONNX Runtime's reference use); its
circuit is compiled from the rewrite, a pure function of the ONNX bytes and N, so anyone can
rebuild it. Inputs keep their original form everywhere outside ezkl: :func:`to_slot_inputs`
turns a whole batch's ``input_data`` into the rewritten graph's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prover.core.manifest import Manifest
from prover.errors import CircuitError, ModelError

__all__ = [
    "SLOTTED_ONNX",
    "SLOT_CONCAT_SUFFIX",
    "CircuitGraph",
    "circuit_graph",
    "circuit_input",
    "slot_input_name",
    "slotted_graph",
    "to_slot_inputs",
]

T = TypeVar("T")

#: The scratch file that ``compile`` writes the slotted graph to (not part of the bundle).
SLOTTED_ONNX = "slotted.onnx"

#: The name of the Concat node (and the prefix of its inputs) that joins input ``x``'s slots.
SLOT_CONCAT_SUFFIX = "__slots"


def slot_input_name(name: str, slot: int) -> str:
    """The rewritten graph's input holding slot ``slot`` of input ``name``."""
    return f"{name}__slot{slot}"


def slotted_graph(data: bytes, batch: int) -> bytes:
    """The ONNX model ``data`` (inputs with a leading batch axis) rewritten for ``batch`` slots
    as the module describes; deterministic: the same bytes and batch give the same bytes.

    Raises :class:`~prover.errors.ModelError` when a new name would clash with one the graph
    already uses.
    """
    import onnx
    from onnx import helper

    model = onnx.load_model_from_string(data)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    originals = [v for v in graph.input if v.name not in initializers]
    used = (
        {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
        | initializers
        | {out for node in graph.node for out in (*node.output, node.name)}
    )
    fresh = {
        *(slot_input_name(v.name, s) for v in originals for s in range(batch)),
        *(v.name + SLOT_CONCAT_SUFFIX for v in originals),
    }
    if used & fresh:
        clash = sorted(used & fresh)[0]
        raise ModelError(
            f"the graph already uses the name {clash!r}, which zkinfer needs to give each slot "
            "of a hashed batch input its own graph input",
            hint="rename that tensor or node in the model",
        )
    slot_inputs = []
    for s in range(batch):
        for v in originals:
            one = onnx.ValueInfoProto()
            one.CopyFrom(v)
            one.name = slot_input_name(v.name, s)
            dims = one.type.tensor_type.shape.dim
            dims[0].Clear()
            dims[0].dim_value = 1
            slot_inputs.append(one)
    concats = [
        helper.make_node(
            "Concat",
            [slot_input_name(v.name, s) for s in range(batch)],
            [v.name],
            name=v.name + SLOT_CONCAT_SUFFIX,
            axis=0,
        )
        for v in originals
    ]
    kept = [v for v in graph.input if v.name in initializers]
    del graph.input[:]
    graph.input.extend([*slot_inputs, *kept])
    nodes = [*concats, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString(deterministic=True))


def to_slot_inputs(
    values: Sequence[Sequence[T]], sizes: Sequence[int], batch: int
) -> list[list[T]]:
    """The rewritten graph's ``input_data`` for ``values``, the original graph's: one flat list
    per input whose rows are ``sizes[t]`` values each (one slot's share). Row r of input t goes to
    slot ``r % batch``'s copy of t; several samples (a calibration file, whose length is a
    multiple of the batch) keep their order within each slot. Slot-major, as the graph lists
    them."""
    out: list[list[T]] = []
    for s in range(batch):
        for flat, k in zip(values, sizes, strict=True):
            rows = [flat[r * k : (r + 1) * k] for r in range(len(flat) // k)]
            out.append([v for row in rows[s::batch] for v in row])
    return out


def circuit_input(manifest: Manifest, values: list[list[float]]) -> list[list[float]]:
    """The ``input_data`` that ezkl's circuit of this bundle takes for the whole batch's
    ``values`` (the model's inputs): the same, or split per slot for the slotted graph."""
    if not manifest.slotted_inputs:
        return values
    n = manifest.batch_size
    return to_slot_inputs(values, [t.size // n for t in manifest.inputs], n)


@dataclass(frozen=True)
class CircuitGraph:
    """The graph that ezkl compiles for a bundle: the model itself, or its slotted rewrite,
    with its inputs' names and shapes."""

    path: Path
    names: list[str]
    shapes: list[tuple[int, ...]]
    slotted: bool
    batch: int
    #: one slot's share of each model input
    sizes: list[int]

    def values(self, values: list[list[float]]) -> list[list[float]]:
        """The graph's ``input_data`` for the model's (several samples allowed)."""
        return to_slot_inputs(values, self.sizes, self.batch) if self.slotted else values

    def per_input(self, items: list[Any] | None) -> list[Any] | None:
        """A per-graph-input list of settings.json read per model input; raises
        :class:`~prover.errors.CircuitError` if the slots' copies of an input disagree (ezkl
        picks one input scale for every input, so they never should)."""
        if not self.slotted or items is None:
            return items
        first = items[: len(self.sizes)]
        if items != first * self.batch:
            raise CircuitError(f"ezkl gave the slots of one input different settings: {items}")
        return first


def circuit_graph(
    folder: Path,
    data: bytes,
    names: list[str],
    shapes: list[tuple[int, ...]],
    batch: int,
    *,
    slotted: bool,
) -> CircuitGraph:
    """The graph to compile for the model ``data``, already written as ``folder/network.onnx``,
    whose inputs ``names`` have the batch's ``shapes``: with ``slotted`` (hashed inputs in a
    batch above 1), its slotted rewrite, written to ``folder/slotted.onnx``; otherwise the model
    itself."""
    sizes = [math.prod(shape) // batch for shape in shapes]
    if not slotted:
        return CircuitGraph(folder / "network.onnx", names, shapes, False, batch, sizes)
    path = folder / SLOTTED_ONNX
    path.write_bytes(slotted_graph(data, batch))
    return CircuitGraph(
        path,
        [slot_input_name(name, s) for s in range(batch) for name in names],
        [(1, *shape[1:]) for _ in range(batch) for shape in shapes],
        True,
        batch,
        sizes,
    )
