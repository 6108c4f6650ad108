"""``prove_batch``: up to N requests' inputs proven together by one proof of a batch bundle.

Each given slot's input is checked on its own (:func:`~prover.core.slots.check_slot_inputs`),
every empty slot gets the fixed padding input, and the whole batch is proven once by the same
path as :func:`~prover.core.prove.prove_values` (witness checked against ONNX Runtime, the proof
verified before it is returned).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.core import bundle as b
from prover.core.expected import InputValues
from prover.core.progress import Progress, StepTimer
from prover.core.prove import Proven, proving_session
from prover.core.slots import batch_values, check_slot_inputs, require_slots, slot_outputs
from prover.errors import UsageError

__all__ = ["ProvenBatch", "prove_batch"]


@dataclass(frozen=True)
class ProvenBatch(Proven):
    """One proof of a whole batch, and each slot's share of it.

    ``slot_outputs[s]`` are slot s's outputs decoded from the proof's public instances (``None``
    when outputs are hashed), padding slots included; ``padding`` lists the slots that held the
    padding input (also recorded in the document's claims as ``zkinfer.padding``).
    """

    slot_outputs: list[list[list[float]] | None]
    padding: tuple[int, ...]

    def summary(self) -> dict[str, Any]:
        """:meth:`Proven.summary` with the slots' outputs and the padded slots."""
        return {
            **super().summary(),
            "slot_outputs": self.slot_outputs,
            "padding": list(self.padding),
        }


def prove_batch(
    bundle_or_dir: b.Bundle | Path,
    slots: Sequence[InputValues | None],
    *,
    allow_out_of_range: bool = False,
    progress: Progress | None = None,
) -> ProvenBatch:
    """Prove slot s of the batch on ``slots[s]`` (one slot's input, in any form an input file
    takes), padding every slot given ``None`` or beyond the end of ``slots``; one proof.

    Every given input is checked before anything is proven (an :class:`~prover.errors.
    InputError` names the slot). Raises :class:`~prover.errors.UsageError` when the bundle has no
    slots (see :func:`~prover.core.slots.require_slots`), when ``slots`` is longer than the batch
    or holds no input at all. A folder is opened and its digests checked; a
    :class:`~prover.core.bundle.Bundle` must have been loaded with ``check=PROVE_FILES``.
    """
    with proving_session(bundle_or_dir, StepTimer(progress)) as session:
        bundle = session.bundle
        m = bundle.manifest
        layout = require_slots(m)
        if len(slots) > layout.count:
            raise UsageError(
                f"{len(slots)} inputs for a bundle of {layout.count} slot(s)",
                hint="prove at most one input per slot",
            )
        if all(values is None for values in slots):
            raise UsageError("no slot holds an input: a batch of padding proves nothing")
        checked = [
            None
            if values is None
            else check_slot_inputs(
                bundle, values, where=f"input of slot {s}", allow_out_of_range=allow_out_of_range
            )
            for s, values in enumerate(slots)
        ]
        checked += [None] * (layout.count - len(checked))
        padding = tuple(s for s, values in enumerate(checked) if values is None)
        proven = session.prove(batch_values(m, checked))
    proven.document["zkinfer"]["padding"] = list(padding)
    instances: list[str] = proven.document["instances"][0]
    return ProvenBatch(
        **proven.__dict__,
        slot_outputs=[slot_outputs(instances, m, s) for s in range(layout.count)],
        padding=padding,
    )
