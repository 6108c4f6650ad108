"""Element types of model inputs: which take integers, and what ONNX Runtime is fed.

A model input declared as an integer (token ids into an embedding, class indices) or a boolean
is quantized by ezkl at scale 0 (its value is the field element) whatever the calibrated input
scale, and ezkl truncates a fraction silently (3.6 becomes 3) and panics on a boolean other than
0 or 1. So an integer input only accepts integral values, and a boolean one only 0 and 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from prover.errors import CircuitError, InputError, ZkinferError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MAX_EXACT_INTEGER",
    "Kind",
    "check_kinds",
    "explain_witness_failure",
    "kind_of_ezkl_type",
    "kind_of_onnx_type",
    "numpy_dtype_of_ort_type",
]

Kind = Literal["float", "integer", "boolean"]

#: Integers are carried as JSON numbers and floats on their way to ezkl: beyond 2^53 a float no
#: longer holds every integer, so the value proven could differ from the value sent.
MAX_EXACT_INTEGER = 2**53

_ONNX_INTEGER = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
_EZKL_KINDS: dict[str, Kind] = {"Int": "integer", "TDim": "integer", "Bool": "boolean"}
# numpy's names, not its types: checking an input's kinds (verify) needs no numpy
_ORT_DTYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(bool)": "bool_",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
}


def kind_of_onnx_type(elem_type: str) -> Kind:
    """The kind of an ONNX element type name (``TensorProto.DataType.Name``: ``INT64``, ...)."""
    if elem_type == "BOOL":
        return "boolean"
    return "integer" if elem_type in _ONNX_INTEGER else "float"


def kind_of_ezkl_type(input_type: str) -> Kind:
    """The kind of an ezkl input type as ``settings.json`` records it (``F32``, ``Int``, ...)."""
    return _EZKL_KINDS.get(input_type, "float")


def numpy_dtype_of_ort_type(ort_type: str) -> type[np.generic]:
    """The numpy dtype ONNX Runtime expects for an input it reports as ``ort_type``."""
    import numpy as np

    dtype: type[np.generic] = getattr(np, _ORT_DTYPES.get(ort_type, "float32"))
    return dtype


def check_kinds(values: list[list[float]], kinds: list[Kind], names: list[str], where: str) -> None:
    """Refuse a fraction for an integer input and anything but 0 or 1 for a boolean one."""
    for flat, kind, name in zip(values, kinds, names, strict=True):
        if kind == "float":
            continue
        for j, v in enumerate(flat):
            if kind == "boolean" and v not in (0.0, 1.0):
                raise InputError(
                    f"{where}: input {name!r} is boolean but value {j} is {v:g}; send 0 or 1"
                )
            if not float(v).is_integer():
                raise InputError(
                    f"{where}: input {name!r} takes integers (e.g. token ids) but value {j} is "
                    f"{v:g}; send whole numbers (ezkl would silently truncate it)"
                )
            if abs(v) > MAX_EXACT_INTEGER:
                raise InputError(
                    f"{where}: input {name!r} value {j} = {v:g} is beyond +-2^53, where integers "
                    "are no longer exact; such values cannot be proven faithfully"
                )


def explain_witness_failure(
    error: CircuitError, kinds: list[Kind], names: list[str]
) -> ZkinferError:
    """What to report when ezkl cannot build a witness for a checked input.

    On a compiled model, that happens when an integer input indexes past a table (a token id
    beyond the vocabulary, or a negative one, which ONNX allows and ezkl does not): ezkl panics
    without naming the input. Such a failure is the input's, so it is reported as one.
    """
    integer = [n for n, k in zip(names, kinds, strict=True) if k != "float"]
    if not integer:
        return error
    listed = ", ".join(repr(n) for n in integer)
    return InputError(
        f"ezkl cannot evaluate the model on this input ({error}); integer input(s) {listed} "
        "used as indices (token ids, class indices) must lie in 0 .. size-1 of the table they "
        "index: ezkl takes no negative indices"
    )
