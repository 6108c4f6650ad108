"""Inference inputs: parsing ezkl's JSON format and refusing anything that would prove nonsense.

ezkl quantizes NaN to 0 and wraps out-of-range values silently, so a proof over such an input
would be valid for a number nobody sent. Every input is checked here before it reaches ezkl.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "InputRange",
    "flatten",
    "inputs_from_document",
    "load_inputs",
    "parse_inputs",
    "read_input_document",
    "validate_inputs",
]

from prover.core.jsonio import loads_bounded
from prover.errors import InputError

#: How far (in multiples of the calibrated span) an input may lie outside the calibration data.
DEFAULT_RANGE_MARGIN = 1.0


@dataclass(frozen=True)
class InputRange:
    """The range seen in calibration for one model input, and the range accepted when proving."""

    calibrated_min: float
    calibrated_max: float
    accepted_min: float
    accepted_max: float

    @classmethod
    def from_values(cls, values: list[float], margin: float = DEFAULT_RANGE_MARGIN) -> InputRange:
        """The calibrated range of ``values``, widened by ``margin`` spans on each side."""
        lo, hi = min(values), max(values)
        span = max(hi - lo, 1.0)
        return cls(lo, hi, lo - margin * span, hi + margin * span)

    def to_json(self) -> dict[str, list[float]]:
        """The form stored in the manifest."""
        return {
            "calibrated": [self.calibrated_min, self.calibrated_max],
            "accepted": [self.accepted_min, self.accepted_max],
        }

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> InputRange:
        """Read the form stored in the manifest."""
        (cmin, cmax), (amin, amax) = data["calibrated"], data["accepted"]
        return cls(float(cmin), float(cmax), float(amin), float(amax))


def flatten(value: Any, where: str) -> list[float]:
    """Flatten nested lists of numbers into one list of floats; reject anything else by name."""
    out: list[float] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise InputError(f"{where}: {item!r} is not a number; inputs must be lists of numbers")
        else:
            try:
                out.append(float(item))
            except OverflowError:
                raise InputError(f"{where}: {str(item)[:20]}... is too large for a float") from None
    return out


def parse_inputs(doc: Any, where: str, n_inputs: int) -> list[list[float]]:
    """Read ``{"input_data": [[...], ...]}`` (one flat list per input) or ``{"input": nested}``."""
    if not isinstance(doc, dict) or not ({"input_data", "input"} & doc.keys()):
        raise InputError(
            f'{where}: expected a JSON object with "input_data" (one flat list of numbers per '
            'model input) or "input" (a nested list), e.g. {"input_data": [[0.1, 0.2]]}'
        )
    if "input_data" in doc:
        data = doc["input_data"]
        if not isinstance(data, list) or not data:
            raise InputError(f'{where}: "input_data" must be a non-empty list of lists of numbers')
        if n_inputs == 1 and all(not isinstance(v, list) for v in data):
            data = [data]  # a single flat list for a single-input model is unambiguous
        if len(data) != n_inputs:
            raise InputError(
                f'{where}: "input_data" has {len(data)} lists but the model has {n_inputs} input(s)'
            )
        return [flatten(v, f"{where}: input_data[{i}]") for i, v in enumerate(data)]
    data = doc["input"]
    if n_inputs == 1:
        return [flatten(data, f'{where}: "input"')]
    if not isinstance(data, list) or len(data) != n_inputs:
        raise InputError(f'{where}: "input" must hold one nested list per model input ({n_inputs})')
    return [flatten(v, f"{where}: input[{i}]") for i, v in enumerate(data)]


def nested_shape(value: Any) -> tuple[int, ...] | None:
    """The shape of a regular nested list (``()`` for a number), ``None`` if it is ragged."""
    if not isinstance(value, list):
        return ()
    shapes = {nested_shape(v) for v in value}
    if len(shapes) > 1 or None in shapes:
        return None
    inner = shapes.pop() if shapes else ()
    return None if inner is None else (len(value), *inner)


def _check_nested(doc: Any, shapes: list[tuple[int, ...]], where: str) -> None:
    """A nested ``"input"`` must have the model's shape (leading 1s optional) or be flat."""
    tensors = [doc["input"]] if len(shapes) == 1 else doc["input"]
    for i, (value, want) in enumerate(zip(tensors, shapes, strict=True)):
        got = nested_shape(value)
        if got is None:
            raise InputError(f'{where}: "input" {i} is a ragged nested list; use the model shape')
        if len(got) > 1 and _squeeze(got) != _squeeze(want):
            raise InputError(
                f'{where}: "input" {i} has shape {list(got)} but the model expects {list(want)}'
            )


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def load_inputs(
    path: Path, n_inputs: int, shapes: list[tuple[int, ...]] | None = None
) -> list[list[float]]:
    """Load an input file; see :func:`parse_inputs` for the accepted formats.

    With ``shapes``, a nested ``"input"`` must also have those shapes (or be flat).
    """
    path = Path(path)
    return inputs_from_document(read_input_document(path), str(path), n_inputs, shapes)


def read_input_document(path: Path) -> Any:
    """Parse an input file as JSON (NaN and Infinity kept, to be named by the checks)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such input file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the input file: {exc}") from None
    try:
        return loads_bounded(text, parse_constant=float)  # keep NaN/Infinity to name them
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:  # integers past Python's digit limit, deep nesting
        raise InputError(f"{path}: not usable JSON ({str(exc)[:120]})") from None


def inputs_from_document(
    doc: Any, where: str, n_inputs: int, shapes: list[tuple[int, ...]] | None = None
) -> list[list[float]]:
    """The flat inputs of a parsed input document, or of a bare list of per-input lists.

    A bare list is read as the value of ``"input_data"``. With ``shapes``, a nested ``"input"``
    must also have those shapes (or be flat).
    """
    if isinstance(doc, list):
        doc = {"input_data": doc}
    values = parse_inputs(doc, where, n_inputs)
    if shapes is not None and "input_data" not in doc:
        _check_nested(doc, shapes, where)
    return values


def validate_inputs(
    values: list[list[float]],
    shapes: list[tuple[int, ...]],
    ranges: list[InputRange] | None,
    where: str,
    *,
    samples: int = 1,
) -> None:
    """Check count, length, finiteness and range of every input; raise :class:`InputError`.

    ``samples`` > 1 accepts that many inputs concatenated (calibration data).
    """
    for i, (flat, shape) in enumerate(zip(values, shapes, strict=True)):
        want = math.prod(shape)
        if samples == 1 and len(flat) != want:
            raise InputError(
                f"{where}: input {i} has {len(flat)} values but the model expects shape "
                f"{list(shape)} ({want} values)"
            )
        if samples != 1 and (len(flat) == 0 or len(flat) % want):
            raise InputError(
                f"{where}: input {i} has {len(flat)} values, not a multiple of the model's "
                f"{want} values per sample (shape {list(shape)})"
            )
        for j, v in enumerate(flat):
            if not math.isfinite(v):
                raise InputError(
                    f"{where}: input {i} value {j} is {v}; NaN and infinity cannot be proven "
                    "(ezkl would silently turn them into other numbers)"
                )
        if ranges is None:
            continue
        r = ranges[i]
        for j, v in enumerate(flat):
            if not r.accepted_min <= v <= r.accepted_max:
                raise InputError(
                    f"{where}: input {i} value {j} = {v:g} is far outside the calibrated range "
                    f"[{r.calibrated_min:g}, {r.calibrated_max:g}] (accepted: "
                    f"[{r.accepted_min:g}, {r.accepted_max:g}]); the circuit's fixed-point "
                    "lookups would not represent it. Recompile with calibration data that covers it"
                )
