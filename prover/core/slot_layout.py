"""Where each slot of a batch circuit sits in a proof's public instances.

A bundle compiled with a batch size N from a model with a symbolic leading axis has N *slots*:
slot s is row s of every input and output tensor. ezkl lays the public instances out as every
input tensor flattened row-major, in input order, then every output tensor likewise; so slot s of
tensor t (``k_t`` = its size / N values per slot) sits at the part's offset, plus the sizes of the
tensors before t, plus ``s * k_t``. Hashed inputs of a batch compiled from the slotted graph
(:mod:`prover.core.slot_graph`) are one hash per (slot, input tensor), slot-major. This module
computes that layout from a manifest's shapes and instance layout; :mod:`prover.core.slots`
builds the per-slot operations on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from prover.core.manifest_parts import InstanceLayout, InstancePart, Tensor
from prover.errors import UsageError

__all__ = ["Segment", "SlotLayout", "compute_slots", "read_slots", "slots_unavailable_reason"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of ``count`` public instances starting at index ``offset``."""

    offset: int
    count: int

    def of(self, instances: Sequence[T]) -> list[T]:
        """This run of ``instances``."""
        return list(instances[self.offset : self.offset + self.count])

    def to_json(self) -> list[int]:
        """The recorded form: ``[offset, count]``."""
        return [self.offset, self.count]


def _run(segments: tuple[Segment, ...]) -> Segment | None:
    """The single run that ``segments`` (in order) form, or ``None`` when they leave gaps."""
    if not segments:
        return None
    end = segments[0].offset
    for seg in segments:
        if seg.offset != end:
            return None
        end += seg.count
    return Segment(segments[0].offset, end - segments[0].offset)


@dataclass(frozen=True, slots=True)
class SlotLayout:
    """The instances of every slot: ``input[s]`` (and ``output[s]``) holds one segment per input
    (output) tensor; ``output`` is ``None`` when outputs are hashed (no slot owns a hash)."""

    count: int
    input: tuple[tuple[Segment, ...], ...]
    output: tuple[tuple[Segment, ...], ...] | None

    def check_slot(self, slot: int) -> int:
        """``slot`` if this layout has it; else :class:`~prover.errors.UsageError` (field
        ``slot``) naming the slot count."""
        if not 0 <= slot < self.count:
            raise UsageError(
                f"{slot}: out of range; this bundle has {self.count} slot(s), "
                f"0 to {self.count - 1}",
                field="slot",
            )
        return slot

    def input_instances(self, instances: Sequence[T], slot: int) -> list[T]:
        """Slot ``slot``'s input instances, tensor after tensor."""
        return [x for seg in self.input[self.check_slot(slot)] for x in seg.of(instances)]

    def output_instances(self, instances: Sequence[T], slot: int) -> list[T] | None:
        """Slot ``slot``'s output instances, tensor after tensor; ``None`` when outputs are
        hashed."""
        if self.output is None:
            return None
        return [x for seg in self.output[self.check_slot(slot)] for x in seg.of(instances)]

    @property
    def per_slot_input_count(self) -> int:
        """How many input instances one slot has."""
        return sum(seg.count for seg in self.input[0])

    @property
    def per_slot_output_count(self) -> int:
        """How many output instances one slot has (0 when outputs are hashed)."""
        return 0 if self.output is None else sum(seg.count for seg in self.output[0])

    @property
    def contiguous(self) -> bool:
        """Whether slot s's inputs are the one run ``first + s*k .. + k`` (k the per-slot count,
        first slot 0's offset), and its outputs likewise: what a contract can check with an offset
        and a count per slot. True for one input and one output tensor, and for a batch of 1."""
        return all(_strided(parts) for parts in (self.input, self.output) if parts is not None)

    def to_json(self) -> dict[str, Any]:
        """The recorded form (the manifest's ``slots``)."""
        return {
            "count": self.count,
            "input": [[seg.to_json() for seg in slot] for slot in self.input],
            "output": None
            if self.output is None
            else [[seg.to_json() for seg in slot] for slot in self.output],
        }


def _strided(parts: tuple[tuple[Segment, ...], ...]) -> bool:
    runs = [_run(slot) for slot in parts]
    first = runs[0]
    return first is not None and all(
        run == Segment(first.offset + s * first.count, first.count) for s, run in enumerate(runs)
    )


def slots_unavailable_reason(
    inputs: tuple[Tensor, ...],
    outputs: tuple[Tensor, ...],
    instances: InstanceLayout,
    batch: int,
    *,
    slotted_inputs: bool = False,
) -> str | None:
    """Why a bundle has no slot layout, in words; ``None`` when it has one."""
    if batch == 1:
        return None
    if instances.input.visibility != "public" and not slotted_inputs:
        return (
            f"its inputs are {instances.input.visibility} and it was compiled without one graph "
            f"input per slot: ezkl hashed a whole input tensor, all {batch} slots together, into "
            "one instance, so no slot's input can be checked alone (recompile it with this "
            "zkinfer to get one hash per slot)"
        )
    for kind, tensors in (("input", inputs), ("output", outputs)):
        for t in tensors:
            if not t.shape or t.shape[0] != batch:
                return (
                    f"{kind} {t.name!r} has shape {list(t.shape)}, whose leading dimension is not "
                    f"the batch size {batch}"
                )
    return None


def _segments(
    part: InstancePart, tensors: tuple[Tensor, ...], batch: int
) -> tuple[tuple[Segment, ...], ...]:
    """Per slot, one segment per tensor of a public part."""
    starts, offset = [], part.offset
    for t in tensors:
        starts.append(offset)
        offset += t.size
    return tuple(
        tuple(
            Segment(start + s * (t.size // batch), t.size // batch)
            for start, t in zip(starts, tensors, strict=True)
        )
        for s in range(batch)
    )


def compute_slots(
    inputs: tuple[Tensor, ...],
    outputs: tuple[Tensor, ...],
    instances: InstanceLayout,
    batch: int,
    *,
    slotted_inputs: bool = False,
) -> SlotLayout | None:
    """The slot layout implied by the tensors' shapes and the instance layout; ``None`` when no
    slot can be bound on its own (see :func:`slots_unavailable_reason`).

    A batch of 1 has one slot covering every instance (a hashed part: one hash per tensor).
    Hashed inputs of a bundle compiled from the slotted graph (``slotted_inputs``, see
    :mod:`prover.core.slot_graph`) are one hash per (slot, input), slot-major: slot s owns the
    hashes ``offset + s*T .. + T`` for T inputs.
    """
    why = slots_unavailable_reason(inputs, outputs, instances, batch, slotted_inputs=slotted_inputs)
    if why is not None:
        return None

    def part(p: InstancePart, tensors: tuple[Tensor, ...]) -> tuple[tuple[Segment, ...], ...]:
        if p.visibility == "public":
            return _segments(p, tensors, batch)
        # hashed inputs (hashed outputs have no slots: see below): one hash per tensor and slot,
        # slot-major (a batch of 1, or slotted inputs: checked above)
        n = len(tensors)
        return tuple(
            tuple(Segment(p.offset + s * n + i, 1) for i in range(n)) for s in range(batch)
        )

    outs = None if instances.output.visibility != "public" else part(instances.output, outputs)
    return SlotLayout(count=batch, input=part(instances.input, inputs), output=outs)


def read_slots(raw: Any) -> SlotLayout | None:
    """The recorded form back as a layout; raises ``ValueError`` when it is malformed."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"count", "input", "output"}:
        raise ValueError("slots must hold count, input and output")
    count = raw["count"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError("slots.count must be a positive integer")

    def parts(value: Any) -> tuple[tuple[Segment, ...], ...]:
        if not isinstance(value, list) or len(value) != count:
            raise ValueError("slots must list one entry per slot")
        return tuple(tuple(_segment(seg) for seg in _list(slot)) for slot in value)

    output = None if raw["output"] is None else parts(raw["output"])
    return SlotLayout(count=count, input=parts(raw["input"]), output=output)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("a slot must be a list of [offset, count] segments")
    return value


def _segment(value: Any) -> Segment:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return Segment(value[0], value[1])
    raise ValueError("a segment must be [offset, count] of non-negative integers")
