"""The parts of a bundle's :class:`~prover.core.manifest.Manifest`: frozen records, each with the
``to_json`` that writes its part of ``manifest.json`` back exactly as read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from prover.core.inputs import InputRange
from prover.core.solidity import EIP170_LIMIT

__all__ = [
    "Circuit",
    "CompileArgs",
    "Fidelity",
    "InstanceLayout",
    "InstancePart",
    "OnnxRecord",
    "PartName",
    "ReferenceRecord",
    "SrsRecord",
    "Tensor",
    "VerifierRecord",
    "Visibility",
]

PartName = Literal["input", "output"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CompileArgs:
    """The arguments a model was compiled with (``run_args``; part of the model id)."""

    input_visibility: str
    output_visibility: str
    param_visibility: str
    target: str
    batch_size: int
    max_logrows: int | None
    #: The largest verifier runtime code compile accepted (0: any); recorded only when it is not
    #: EIP-170's, so that bundles compiled with the default keep their model id.
    verifier_limit: int = EIP170_LIMIT

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {
            "input_visibility": self.input_visibility,
            "output_visibility": self.output_visibility,
            "param_visibility": self.param_visibility,
            "target": self.target,
            "batch_size": self.batch_size,
            "max_logrows": self.max_logrows,
            **(
                {"verifier_limit": self.verifier_limit}
                if self.verifier_limit != EIP170_LIMIT
                else {}
            ),
        }


@dataclass(frozen=True, slots=True)
class Visibility:
    """What the circuit makes public of the inputs, outputs and weights."""

    input: str
    output: str
    param: str

    def to_json(self) -> dict[str, str]:
        """The recorded form."""
        return {"input": self.input, "output": self.output, "param": self.param}


@dataclass(frozen=True, slots=True)
class ReferenceRecord:
    """The opset ONNX Runtime runs as the reference (see :mod:`prover.core.onnx_convert`)."""

    opset: int
    converted: bool
    scope: str

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {"opset": self.opset, "converted": self.converted, "scope": self.scope}


@dataclass(frozen=True, slots=True)
class OnnxRecord:
    """The compiled ONNX model: digest, opset, operators and its ONNX Runtime reference."""

    sha256: str
    opset: int
    ops: tuple[str, ...]
    onnxruntime: ReferenceRecord

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {
            "sha256": self.sha256,
            "opset": self.opset,
            "ops": list(self.ops),
            "onnxruntime": self.onnxruntime.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Tensor:
    """One model input or output: name, shape with the batch resolved, and for inputs the
    calibrated and accepted ranges."""

    name: str
    shape: tuple[int, ...]
    range: InputRange | None = None

    @property
    def size(self) -> int:
        """The number of elements."""
        return math.prod(self.shape)

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        doc: dict[str, Any] = {"name": self.name, "shape": list(self.shape)}
        if self.range is not None:
            doc["range"] = self.range.to_json()
        return doc


@dataclass(frozen=True, slots=True)
class Circuit:
    """Circuit figures from ``settings.json``: logrows, scales, input types, rows, check mode."""

    logrows: int
    input_scales: tuple[int, ...]
    output_scales: tuple[int, ...]
    input_types: tuple[str, ...]
    num_rows: int | None
    check_mode: str | None

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {
            "logrows": self.logrows,
            "input_scales": list(self.input_scales),
            "output_scales": list(self.output_scales),
            "input_types": list(self.input_types),
            "num_rows": self.num_rows,
            "check_mode": self.check_mode,
        }


@dataclass(frozen=True, slots=True)
class InstancePart:
    """Where the inputs (or their hashes) or the outputs sit in a proof's public instances."""

    visibility: str
    offset: int
    count: int

    def of(self, instances: list[T]) -> list[T]:
        """This part of ``instances``."""
        return instances[self.offset : self.offset + self.count]

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {"visibility": self.visibility, "offset": self.offset, "count": self.count}


@dataclass(frozen=True, slots=True)
class InstanceLayout:
    """The public instances of every proof: the input part, then the output part."""

    input: InstancePart
    output: InstancePart
    total: int

    def part(self, kind: PartName) -> InstancePart:
        """The ``input`` or ``output`` part."""
        return self.input if kind == "input" else self.output

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {"input": self.input.to_json(), "output": self.output.to_json(), "total": self.total}


@dataclass(frozen=True, slots=True)
class SrsRecord:
    """The SRS in the bundle: digest, size and provenance (``ceremony`` or ``dev-unsafe``)."""

    sha256: str
    logrows: int
    provenance: str
    note: str | None

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {
            "sha256": self.sha256,
            "logrows": self.logrows,
            "provenance": self.provenance,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class VerifierRecord:
    """The compiled Solidity verifier: contract name, runtime bytecode size, compiler."""

    contract: str
    runtime_size: int
    compiler: str

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {
            "contract": self.contract,
            "runtime_size": self.runtime_size,
            "compiler": self.compiler,
        }


@dataclass(frozen=True, slots=True)
class Fidelity:
    """The sample input's outputs in ONNX Runtime and in the circuit (a record for people)."""

    onnxruntime: tuple[tuple[float, ...], ...]
    circuit: tuple[tuple[float, ...], ...]
    max_abs_diff: float

    def to_json(self) -> dict[str, Any]:
        """The recorded form."""
        return {
            "onnxruntime": [list(g) for g in self.onnxruntime],
            "circuit": [list(g) for g in self.circuit],
            "max_abs_diff": self.max_abs_diff,
        }
