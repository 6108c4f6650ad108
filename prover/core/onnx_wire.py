"""The few facts the manifest records about a model, read straight from ONNX's protobuf bytes.

Checking a bundle (``verify`` included) compares the manifest's opset, operators and input and
output names with ``network.onnx``. Importing ``onnx`` for that (and numpy with it) cost a
verify process more than the verification itself, so this module reads those fields from the
protobuf wire format with protobuf's own rules: fields of another wire type and unknown fields
are skipped, the last value of a singular field wins, a singular message (``graph``) given more
than once is merged (its repeated fields concatenated). Malformed bytes are a ``ValueError``.
``tests/test_onnx_wire.py`` checks it against ``onnx`` itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["onnx_signature"]

_VARINT, _I64, _LEN, _START_GROUP, _END_GROUP, _I32 = 0, 1, 2, 3, 4, 5
# field numbers from onnx.proto
_MODEL_GRAPH, _MODEL_OPSET = 7, 8
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 5, 11, 12
_NODE_OP_TYPE, _TENSOR_NAME, _VALUE_INFO_NAME = 4, 8, 1
_VALUE_INFO_TYPE, _TYPE_TENSOR, _TENSOR_TYPE_SHAPE, _SHAPE_DIM = 2, 1, 2, 1
_DIM_VALUE, _DIM_PARAM = 1, 2


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7


def _fields(data: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message; a length-delimited value is a view."""
    pos, depth = 0, 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: Any = None
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            value = data[pos : pos + size]
            pos += size
        elif wire == _START_GROUP:
            depth += 1
        elif wire == _END_GROUP:
            depth -= 1
            if depth < 0:
                raise ValueError("unmatched end of group")
        else:
            raise ValueError(f"wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
        if depth == 0 and wire != _END_GROUP:  # fields inside a (deprecated) group are skipped
            yield number, wire, value
    if depth:
        raise ValueError("unterminated group")


def _string(data: memoryview, number: int) -> str:
    """The last value of singular string field ``number`` ("" when absent)."""
    value = ""
    for n, wire, v in _fields(data):
        if n == number and wire == _LEN:
            value = bytes(v).decode("utf-8", "replace")
    return value


def _messages(data: memoryview, number: int) -> Iterator[memoryview]:
    """Every occurrence of message field ``number`` (protobuf merges them in order)."""
    for n, wire, v in _fields(data):
        if n == number and wire == _LEN:
            yield v


def _dims(value_info: memoryview) -> tuple[int | str, ...]:
    """A tensor's dimensions: ints, or the symbolic name (``unk`` if it has neither), as
    :func:`prover.core.onnx_model.value_dims` reads them with ``onnx``."""
    dims: list[int | str] = []
    for kind in _messages(value_info, _VALUE_INFO_TYPE):
        for tensor in _messages(kind, _TYPE_TENSOR):
            for shape in _messages(tensor, _TENSOR_TYPE_SHAPE):
                for dim in _messages(shape, _SHAPE_DIM):
                    value: int | str = "unk"
                    for n, wire, v in _fields(dim):  # a oneof: the last one set wins
                        if n == _DIM_VALUE and wire == _VARINT:
                            value = v - (1 << 64) if v >> 63 else v
                        elif n == _DIM_PARAM and wire == _LEN:
                            value = bytes(v).decode("utf-8", "replace") or "unk"
                    dims.append(value)
    return tuple(dims)


@dataclass
class _Graph:
    ops: set[str] = field(default_factory=set)
    initializers: set[str] = field(default_factory=set)
    inputs: list[tuple[str, tuple[int | str, ...]]] = field(default_factory=list)
    outputs: list[tuple[str, tuple[int | str, ...]]] = field(default_factory=list)

    def read(self, data: memoryview) -> None:
        for n, wire, v in _fields(data):
            if wire != _LEN:
                continue
            if n == _GRAPH_NODE:
                self.ops.add(_string(v, _NODE_OP_TYPE))
            elif n == _GRAPH_INITIALIZER:
                self.initializers.add(_string(v, _TENSOR_NAME))
            elif n == _GRAPH_INPUT:
                self.inputs.append((_string(v, _VALUE_INFO_NAME), _dims(v)))
            elif n == _GRAPH_OUTPUT:
                self.outputs.append((_string(v, _VALUE_INFO_NAME), _dims(v)))


def _opset(data: memoryview) -> tuple[str, int]:
    domain, version = "", 0
    for n, wire, v in _fields(data):
        if n == _OPSET_DOMAIN and wire == _LEN:
            domain = bytes(v).decode("utf-8", "replace")
        elif n == _OPSET_VERSION and wire == _VARINT:
            version = v - (1 << 64) if v >> 63 else v  # int64
    return domain, version


def onnx_signature(data: bytes) -> dict[str, Any]:
    """The model's default-domain opset, its sorted operator types, and the names and dimensions
    of its graph inputs (initializers excluded) and outputs, as ``onnx`` would read them from
    ``data``."""
    view = memoryview(data)
    graph = _Graph()
    opsets: list[tuple[str, int]] = []
    for n, wire, v in _fields(view):
        if wire != _LEN:
            continue
        if n == _MODEL_GRAPH:
            graph.read(v)
        elif n == _MODEL_OPSET:
            opsets.append(_opset(v))
    inputs = [(name, dims) for name, dims in graph.inputs if name not in graph.initializers]
    return {
        "opset": max((ver for dom, ver in opsets if dom in ("", "ai.onnx")), default=0),
        "ops": sorted(graph.ops),
        "inputs": [name for name, _ in inputs],
        "outputs": [name for name, _ in graph.outputs],
        # symbolic dimensions by name (ezkl fixes them with the recorded variables)
        "input dims": [dims for _, dims in inputs],
        "output dims": [dims for _, dims in graph.outputs],
    }
