"""Static size bounds on every tensor of a model, checked before ezkl sees it.

A few hundred bytes of ONNX can describe a tensor of 10^13 elements (an ``Expand`` to a huge
constant shape, then a reduction); ezkl would try to allocate it and abort the process. ONNX shape
inference (with constant propagation) gives every tensor's static shape once the graph inputs are
fixed, so such a model is refused by name before any circuit work. Tensors whose shape inference
cannot determine are left to the memory limit of the child process that runs ezkl's steps
(:mod:`prover.core.isolation`).
"""

from __future__ import annotations

import math
from typing import Any

from prover.core.onnx_model import OnnxInfo
from prover.errors import ModelError
from prover.settings import get_settings

__all__ = ["check_tensor_sizes", "max_tensor_elements"]

LIMIT_ENV = "ZKINFER_MAX_TENSOR_ELEMENTS"


def max_tensor_elements() -> int:
    """The limit in force: ``ZKINFER_MAX_TENSOR_ELEMENTS`` if set, else the default."""
    return get_settings().max_tensor_elements


def _static_dims(value_info: Any) -> tuple[int, ...] | None:
    """The shape if every dimension is a known, non-negative number; otherwise ``None``."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def _fix_inputs(model: Any, shapes: dict[str, tuple[int, ...]]) -> None:
    """Give the graph inputs their resolved shapes (symbolic batch axes fixed) before inference."""
    for value in model.graph.input:
        if value.name not in shapes:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, shapes[value.name], strict=False):
            dim.Clear()
            dim.dim_value = size


def check_tensor_sizes(
    info: OnnxInfo, input_shapes: dict[str, tuple[int, ...]], limit: int | None = None
) -> None:
    """Refuse a model any of whose tensors has more than ``limit`` elements, naming the node.

    ``input_shapes`` maps each graph input to its resolved shape (batch axis fixed).
    """
    import onnx
    from onnx import shape_inference

    limit = max_tensor_elements() if limit is None else limit
    model = onnx.load_model_from_string(info.data)
    _fix_inputs(model, input_shapes)
    try:
        inferred = shape_inference.infer_shapes(
            model, check_type=False, strict_mode=False, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
        raise ModelError(f"{info.path}: ONNX shape inference rejects the model: {first}") from None
    graph = inferred.graph
    producer = {out: node for node in graph.node for out in node.output}
    tensors = [*graph.input, *graph.value_info, *graph.output]
    for init in graph.initializer:
        elements = math.prod(init.dims)
        if elements > limit:
            raise ModelError(
                f"{info.path}: initializer {init.name!r} has {elements:,} elements, over the "
                f"limit of {limit:,} per tensor; no circuit that large can be proven here"
            )
    for value in tensors:
        dims = _static_dims(value)
        if dims is None:
            continue
        elements = math.prod(dims)
        if elements <= limit:
            continue
        node = producer.get(value.name)
        if node is None:
            what = f"input {value.name!r}"
        else:
            named = f"node {node.name!r}" if node.name else "an unnamed node"
            what = f"{named} ({node.op_type}) makes {value.name!r}"
        raise ModelError(
            f"{info.path}: {what} with shape {list(dims)} = {elements:,} elements, over the limit "
            f"of {limit:,} per tensor; no circuit that large can be proven here (make the model "
            f"smaller, or raise {LIMIT_ENV} if the machine really has room)"
        )
