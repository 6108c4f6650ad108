"""The input a proof must be about, for :mod:`prover.core.verify`: a whole input or one slot's."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from prover.core import bundle as b
from prover.core.expected import (
    InputValues,
    check_bundle_inputs,
    expected_input_instances,
    load_bundle_inputs,
)
from prover.core.inputs import read_input_document
from prover.core.slots import check_slot_inputs, require_slots

__all__ = ["ExpectedInput"]


class ExpectedInput:
    """The input a proof must be about: loaded and checked against the bundle on first use only.

    Loading lazily keeps the order of checks of :func:`verify` (a malformed proof is invalid
    before the input is read); :func:`instances` can be called early to fail fast instead.
    """

    def __init__(
        self,
        bundle: b.Bundle,
        path: Path | None = None,
        *,
        values: InputValues | None = None,
        slot: int | None = None,
    ) -> None:
        """The input in the file at ``path``, or given as ``values`` (one of the two); with
        ``slot``, ONE slot's input, which that slot of a batch proof must carry."""
        self.bundle = bundle
        self.path = None if path is None else Path(path)
        self.slot = slot
        self._instances: list[str] | None = None
        self._load: Callable[[], list[list[float]]]
        if self.path is not None and values is None:
            source: InputValues | Callable[[], Any] = partial(read_input_document, self.path)
            whole = partial(load_bundle_inputs, bundle, self.path, allow_out_of_range=True)
        elif self.path is None and values is not None:
            source = values
            whole = partial(check_bundle_inputs, bundle, values, allow_out_of_range=True)
        else:
            raise TypeError("ExpectedInput takes the input's path or its values, not both")
        if slot is None:
            self._load = whole
        else:
            require_slots(bundle.manifest).check_slot(slot)
            where = "input" if self.path is None else str(self.path)
            self._load = partial(_slot_input, bundle, source, where)

    @property
    def described(self) -> str:
        """How a verdict names this input."""
        what = "the input given" if self.path is None else f"the input in {self.path}"
        return what if self.slot is None else f"{what} in slot {self.slot}"

    def instances(self) -> list[str]:
        """The input instances a proof over this input carries; raises ``InputError`` if bad."""
        if self._instances is None:
            self._instances = expected_input_instances(self.bundle, self._load())
        return self._instances


def _slot_input(
    bundle: b.Bundle, doc: InputValues | Callable[[], Any], where: str
) -> list[list[float]]:
    """One slot's input, read (a callable reads the file) and checked, range not enforced."""
    values = doc() if callable(doc) else doc
    return check_slot_inputs(bundle, values, where=where, allow_out_of_range=True)
