"""Which part of a bundle's instances one on-chain request is: one slot, or the whole input.

The market settles ``batchSize`` slots of a registration separately, each described by an offset
and a count of input and of output instances (docs/onchain.md, "Batches"). A bundle compiled for a
batch of N whose every slot is one run of instances (one input and one output tensor) is
registered with N slots, and a request carries ONE slot's input; with hashed inputs each slot's
run is its own Poseidon hash (compile's slotted graph). Any other bundle (a batch of 1, or a batch
without such a layout: several tensors, hashed inputs of a bundle compiled before per-slot
hashes) is registered with one slot covering every instance, and a request carries the whole
input, as before batching.
"""

from __future__ import annotations

import json
from pathlib import Path

from prover.core import bundle as b
from prover.core.batch import prove_batch
from prover.core.expected import load_bundle_inputs
from prover.core.inputs import read_input_document
from prover.core.manifest import Manifest
from prover.core.progress import Progress
from prover.core.slots import SlotLayout, check_slot_inputs

__all__ = [
    "load_request_input",
    "market_slots",
    "prove_slots",
    "request_input_instances",
    "request_input_sizes",
]


def market_slots(manifest: Manifest) -> SlotLayout | None:
    """The slots the market settles separately for this bundle: its slot layout when it has more
    than one slot and each slot's inputs and outputs are one run of instances (what an offset and
    a count per slot describe); ``None`` when a request is the whole input."""
    slots = manifest.slots
    if slots is None or slots.count == 1 or not slots.contiguous:
        return None
    return slots


def request_input_sizes(manifest: Manifest) -> list[int]:
    """How many values of each model input one request carries (one slot's, or all)."""
    slots = market_slots(manifest)
    count = 1 if slots is None else slots.count
    return [i.size // count for i in manifest.inputs]


def load_request_input(bundle: b.Bundle, input_path: Path) -> list[list[float]]:
    """A request's input read from a file and checked: ONE slot's input for a bundle the market
    settles by slots, else the whole input (:class:`~prover.errors.InputError` naming the file)."""
    if market_slots(bundle.manifest) is None:
        return load_bundle_inputs(bundle, Path(input_path))
    document = read_input_document(Path(input_path))
    return check_slot_inputs(bundle, document, where=str(input_path))


def request_input_instances(manifest: Manifest, instances: list[int], slot: int = 0) -> list[int]:
    """The input instances a request settled at ``slot`` of a proof with ``instances`` must have
    committed to: that slot's, or the whole input part for a bundle without market slots."""
    slots = market_slots(manifest)
    if slots is None:
        return manifest.instances.input.of(instances)
    return slots.input_instances(instances, slot)


def prove_slots(
    bundle: b.Bundle, slots: list[list[list[float]]], out: Path, progress: Progress | None = None
) -> Path:
    """Prove ``slots[s]`` at slot s of a bundle with market slots (the rest padding) and write the
    proof to ``out``."""
    proven = prove_batch(bundle.root, slots, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.tmp")
    partial.write_text(json.dumps(proven.document) + "\n")
    partial.replace(out)
    return out
