"""The conformance cases: small models made here, one per group of operator families.

Each case writes its ONNX file (with ``onnx.helper`` or a torch export, at several opsets
including an old exporter's), and inputs are drawn from the model's own signature, so the
pytest suite (``tests/test_conformance.py``) and the table in ``docs/models.md``
(``scripts/conformance_table.py``) run the very same models.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from prover.core.dtypes import kind_of_onnx_type
from prover.core.onnx_model import inspect_onnx

F = TensorProto.FLOAT
INT64 = TensorProto.INT64
#: A case passes when max |proven - ONNX Runtime| <= ABS_TOLERANCE + REL_TOLERANCE * max |ONNX
#: Runtime| over all its outputs. ezkl's fixed point at the scales calibration picks here
#: (2^12, 2^13) stayed within 6e-4 on every case; the margin is for other inputs.
ABS_TOLERANCE = 0.005
REL_TOLERANCE = 0.01
_f32 = np.float32


@dataclass(frozen=True)
class Case:
    """A model that ezkl is expected to compile and prove."""

    name: str
    families: str
    exporter: str
    build: Callable[[Path], None]
    batch: int = 1
    max_logrows: int = 12
    int_high: int = 4  # integer inputs are drawn from [0, int_high)

    def write(self, folder: Path) -> tuple[Path, Path, Path, Path]:
        """Write the model, its sample, a second input and calibration data into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        model = folder / "model.onnx"
        self.build(model)
        rows = draw_inputs(model, self.batch, self.int_high, samples=4)
        files = []
        for name, doc in (
            ("sample", [r[0] for r in rows]),
            ("other", [r[1] for r in rows]),
            ("calibration", [[v for s in r for v in s] for r in rows]),
        ):
            path = folder / f"{name}.json"
            path.write_text(json.dumps({"input_data": doc}))
            files.append(path)
        return model, files[0], files[1], files[2]


@dataclass(frozen=True)
class Unsupported:
    """A model ezkl cannot compile (an operator, or an attribute left to its default): refused
    at compile with exit 2, the message naming ``named``."""

    name: str
    named: str
    build: Callable[[Path], None]


def draw_inputs(model: Path, batch: int, int_high: int, samples: int) -> list[list[list[float]]]:
    """Per model input, ``samples`` flat lists of values: floats in [-1, 1] (3 decimals),
    integers in [0, int_high). Seeded: the same model gets the same inputs."""
    info = inspect_onnx(model)
    rng = np.random.default_rng(7)
    out: list[list[list[float]]] = []
    for spec in info.inputs:
        n = math.prod(spec.resolved({d: batch for d in info.symbolic_dims}))
        if kind_of_onnx_type(spec.elem_type) == "float":
            draw = [np.round(rng.uniform(-1, 1, n), 3).tolist() for _ in range(samples)]
        else:
            draw = [rng.integers(0, int_high, n).astype(float).tolist() for _ in range(samples)]
        out.append(draw)
    return out


def tolerance(reference: list[list[float]]) -> float:
    """The largest accepted |proven - ONNX Runtime| for outputs ``reference``."""
    biggest = max((abs(v) for group in reference for v in group), default=0.0)
    return ABS_TOLERANCE + REL_TOLERANCE * biggest


@dataclass(frozen=True)
class CaseResult:
    """One case run through compile, prove (on an input other than the sample) and verify."""

    case: Case
    logrows: int
    compile_s: float
    prove_s: float
    max_abs_diff: float
    tolerance: float
    valid: bool
    outputs: list[list[float]]
    onnxruntime_outputs: list[list[float]]

    @property
    def passed(self) -> bool:
        return self.valid and self.max_abs_diff <= self.tolerance


def run_case(case: Case, folder: Path) -> CaseResult:
    """Compile the case with a dev SRS, prove its second input, verify the proof."""
    import time

    from prover import CompileOptions, compile_model, prove, verify

    model, sample, other, calibration = case.write(folder)
    # The cases are capped at logrows 12 to keep the suite fast, and at that size most of their
    # verifiers have more columns than EIP-170's 24,576 bytes allow: conformance is about the
    # circuit against ONNX Runtime, so the verifier's size is not held to the limit here
    # (test_verifier_fit.py and the chain tests hold deployable bundles to it).
    options = CompileOptions(
        dev_srs=True, batch_size=case.batch, max_logrows=case.max_logrows, verifier_limit=0
    )
    started = time.perf_counter()
    compiled = compile_model(
        model, sample, folder / "bundle", calibration=calibration, options=options
    )
    compile_s = time.perf_counter() - started
    proved = prove(folder / "bundle", other, folder / "proof.json")
    verdict = verify(folder / "proof.json", folder / "bundle", input_path=other)
    return CaseResult(
        case=case,
        logrows=compiled.bundle.manifest.circuit.logrows,
        compile_s=compile_s,
        prove_s=proved.timings["prove"],
        max_abs_diff=proved.max_abs_diff,
        tolerance=tolerance(proved.onnxruntime_outputs),
        valid=verdict.valid and verdict.outputs == proved.outputs,
        outputs=proved.outputs or [],
        onnxruntime_outputs=proved.onnxruntime_outputs,
    )


# -- onnx.helper models -------------------------------------------------------------------------


def _vi(name: str, shape: list[Any] | None, kind: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, kind, shape)


def _const(name: str, value: Any, dtype: Any = _f32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _save(
    path: Path,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: list[onnx.TensorProto],
    opset: int,
    ir_version: int | None = None,
) -> None:
    graph_inputs = list(inputs)
    if ir_version is not None and ir_version < 4:  # initializers were graph inputs before IR 4
        graph_inputs += [_vi(t.name, list(t.dims), t.data_type) for t in inits]
    graph = helper.make_graph(nodes, "case", graph_inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ir_version is not None:
        model.ir_version = ir_version
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _elementwise(path: Path) -> None:
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Mul", ["s", "a"], ["m"]),
        helper.make_node("Sub", ["m", "bias"], ["d"]),
        helper.make_node("Div", ["d", "two"], ["q"]),
        helper.make_node("Max", ["q", "b"], ["mx"]),
        helper.make_node("Min", ["mx", "a"], ["mn"]),
        helper.make_node("Neg", ["mn"], ["combined"]),
        helper.make_node("Greater", ["a", "b"], ["g"]),
        helper.make_node("Where", ["g", "a", "b"], ["pick"]),
        helper.make_node("ReduceSum", ["s", "axes"], ["sum"], keepdims=0),
        helper.make_node("ReduceMean", ["m"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("ReduceMax", ["pick"], ["max"], axes=[2], keepdims=0),
        helper.make_node("ReduceMin", ["a"], ["min"], axes=[1, 2], keepdims=0),
        helper.make_node("CumSum", ["a", "axis"], ["cum"]),
    ]
    inits = [
        _const("bias", [0.1, -0.2, 0.3]),
        _const("two", 2.0),
        _const("axes", [2], np.int64),
        _const("axis", 2, np.int64),
    ]
    outs = [
        _vi("combined", [1, 2, 3]),
        _vi("sum", [1, 2]),
        _vi("mean", [1, 1, 3]),
        _vi("max", [1, 2]),
        _vi("min", [1]),
        _vi("cum", [1, 2, 3]),
    ]
    _save(path, nodes, [_vi("a", [1, 2, 3]), _vi("b", [1, 1, 3])], outs, inits, 13)


def _shapes(path: Path) -> None:
    i64 = np.int64
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Concat", ["t", "y"], ["c"], axis=2),
        helper.make_node("Split", ["c", "split"], ["left", "right"], axis=2),
        helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["sl"]),
        helper.make_node("Unsqueeze", ["sl", "ax0"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax0"], ["sq"]),
        helper.make_node("Gather", ["sq", "idx"], ["ga"], axis=2),
        helper.make_node("Pad", ["ga", "pads"], ["pad"]),
        helper.make_node("Flatten", ["pad"], ["flat"], axis=1),
        helper.make_node("Tile", ["flat", "reps"], ["tiled"]),
    ]
    inits = [
        _const("shape", [1, 3, 4], i64),
        _const("split", [2, 3], i64),
        _const("starts", [1], i64),
        _const("ends", [5], i64),
        _const("axes", [2], i64),
        _const("ax0", [0], i64),
        _const("idx", [3, 0], i64),
        _const("pads", [0, 0, 1, 0, 0, 1], i64),
        _const("reps", [2, 1], i64),
    ]
    outs = [_vi("left", [1, 4, 2]), _vi("right", [1, 4, 3]), _vi("tiled", [2, 8])]
    _save(path, nodes, [_vi("x", [1, 2, 6]), _vi("y", [1, 4, 2])], outs, inits, 13)


def _activations(path: Path) -> None:
    # Sigmoid and Tanh are lookup tables, each a few columns at logrows 12: every further
    # table (Erf, Exp, Ln, ...) adds as much again to setup and prove time
    unary = ["Relu", "Sigmoid", "Tanh", "HardSigmoid", "Abs"]
    nodes = [helper.make_node(op, ["x"], [op.lower()]) for op in unary]
    nodes += [
        helper.make_node("LeakyRelu", ["x"], ["leaky"], alpha=0.1),
        helper.make_node("Clip", ["x", "lo", "hi"], ["clip"]),
        helper.make_node("Concat", [op.lower() for op in unary], ["smooth"], axis=1),
        helper.make_node("Concat", ["leaky", "clip"], ["piecewise"], axis=1),
    ]
    inits = [_const("lo", -0.5), _const("hi", 0.5)]
    outs = [_vi("smooth", [1, 8 * len(unary)]), _vi("piecewise", [1, 16])]
    _save(path, nodes, [_vi("x", [1, 8])], outs, inits, 13)


def _opset9(path: Path) -> None:
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("InstanceNormalization", ["x", "s", "b"], ["inorm"]),
        helper.make_node("BatchNormalization", ["inorm", "s", "b", "mean", "var"], ["bn"]),
        helper.make_node("AveragePool", ["bn"], ["avg"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("GlobalMaxPool", ["x"], ["gmax"]),
        helper.make_node("Flatten", ["gmax"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "y"], ["head"]),
    ]
    inits = [
        _const("s", [1.0, 0.5]),
        _const("b", [0.0, 0.1]),
        _const("mean", [0.1, 0.1]),
        _const("var", [1.5, 1.5]),
        _const("w1", rng.uniform(-1, 1, (4, 2))),
        _const("b1", rng.uniform(-0.2, 0.2, 4)),
    ]
    outs = [_vi("avg", [1, 2, 3, 3]), _vi("head", [1, 3])]
    _save(path, nodes, [_vi("x", [1, 2, 4, 4]), _vi("y", [4, 3])], outs, inits, 9)


def _old_exporter_opset6(path: Path) -> None:
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node(
            "Conv", ["x", "w"], ["conv"], pads=[1, 1, 1, 1], kernel_shape=[3, 3], strides=[1, 1]
        ),
        helper.make_node(
            "BatchNormalization",
            ["conv", "s", "b", "mean", "var"],
            ["bn"],
            epsilon=1e-5,
            is_test=1,
        ),
        helper.make_node("Add", ["bn", "cb"], ["add"], broadcast=1),
        helper.make_node("Mul", ["add", "k"], ["mul"], broadcast=1),
        helper.make_node("PRelu", ["mul", "slope"], ["y"]),
    ]
    inits = [
        _const("w", rng.uniform(-0.5, 0.5, (2, 1, 3, 3))),
        _const("s", [1.0, 0.8]),
        _const("b", [0.1, -0.1]),
        _const("mean", [0.0, 0.1]),
        _const("var", [1.0, 0.5]),
        _const("cb", [0.05, -0.05, 0.1, 0.0]),
        _const("k", 1.5),
        _const("slope", np.full((2, 1, 1), 0.2)),
    ]
    _save(path, nodes, [_vi("x", [1, 1, 4, 4])], [_vi("y", [1, 2, 4, 4])], inits, 6, 3)


# -- torch exports ------------------------------------------------------------------------------


def _torch_export(
    module: Any,
    args: tuple[Any, ...],
    path: Path,
    opset: int,
    names: tuple[list[str], list[str]],
    dynamic_batch: bool = False,
) -> None:
    import torch

    module.eval()
    axes = {n: {0: "batch"} for n in names[0] + names[1]} if dynamic_batch else None
    # the TorchScript exporter is what writes the older opsets asked for here; it warns that
    # it is deprecated, which says nothing about these models
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=names[0],
            output_names=names[1],
            opset_version=opset,
            dynamic_axes=axes,
            dynamo=False,
        )


def _torch_cnn(path: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    norm = nn.BatchNorm2d(2)
    with torch.no_grad():  # statistics away from the identity that a fresh layer would be
        norm.weight.fill_(0.8)
        norm.bias.fill_(0.1)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        norm,
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2, 3, 2),
        nn.AvgPool2d(2, stride=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, 2),
    )
    _torch_export(model, (torch.zeros(1, 1, 6, 6),), path, 13, (["image"], ["logits"]))


def _torch_mlp_batch(path: Path) -> None:
    import torch
    from torch import nn

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2 = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.l2(torch.relu(self.l1(x)))
            return logits, torch.softmax(logits, dim=-1)

    torch.manual_seed(1)
    names = (["x"], ["logits", "probs"])
    _torch_export(Mlp(), (torch.zeros(1, 4),), path, 17, names, dynamic_batch=True)


def _torch_attention(path: Path) -> None:
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm, self.q, self.k = nn.LayerNorm(4), nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.norm(x)
            weights = torch.softmax(self.q(h) @ self.k(h).transpose(1, 2) / 2.0, dim=-1)
            out: torch.Tensor = weights @ h + x
            return out

    torch.manual_seed(2)
    _torch_export(Attention(), (torch.zeros(1, 3, 4),), path, 17, (["x"], ["y"]))


def _torch_embedding(path: Path) -> None:
    import torch
    from torch import nn

    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.head = nn.Embedding(8, 4), nn.Linear(4, 2)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.head(self.embed(ids).mean(dim=1))
            return out

    torch.manual_seed(3)
    ids = torch.zeros(1, 5, dtype=torch.int64)
    _torch_export(Bag(), (ids,), path, 13, (["ids"], ["logits"]))


def _torch_conv1d(path: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv1d(2, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.ConvTranspose1d(3, 2, 2, stride=2),
        nn.Sigmoid(),
    )
    _torch_export(model, (torch.zeros(1, 2, 6),), path, 11, (["signal"], ["y"]))


CASES: tuple[Case, ...] = (
    Case(
        "elementwise",
        "broadcasting Add Sub Mul Div Max Min Neg Greater Where; ReduceSum ReduceMean ReduceMax "
        "ReduceMin CumSum; 2 inputs, 6 outputs",
        "onnx.helper opset 13",
        _elementwise,
    ),
    Case(
        "shapes",
        "Reshape Transpose Concat Split Slice Squeeze Unsqueeze Gather Pad Flatten Tile; "
        "2 inputs, 3 outputs",
        "onnx.helper opset 13",
        _shapes,
    ),
    Case(
        "activations",
        "Relu Sigmoid Tanh HardSigmoid Abs LeakyRelu Clip; 2 outputs",
        "onnx.helper opset 13",
        _activations,
    ),
    Case(
        "opset9",
        "InstanceNormalization BatchNormalization AveragePool GlobalMaxPool Flatten Gemm "
        "MatMul of two inputs; 2 inputs, 2 outputs",
        "onnx.helper opset 9",
        _opset9,
    ),
    Case(
        "old_exporter",
        "Conv BatchNormalization(6) Add/Mul(6, broadcast attribute) PRelu(6); IR version 3",
        "onnx.helper opset 6",
        _old_exporter_opset6,
    ),
    Case(
        "cnn",
        "Conv2d BatchNorm2d ReLU MaxPool2d AvgPool2d AdaptiveAvgPool2d Flatten Linear",
        "torch opset 13",
        _torch_cnn,
    ),
    Case(
        "conv1d",
        "Conv1d ReLU MaxPool1d ConvTranspose1d Sigmoid",
        "torch opset 11",
        _torch_conv1d,
    ),
    Case(
        "mlp_batch",
        "Linear ReLU Softmax; symbolic batch axis compiled for 2; 2 outputs",
        "torch opset 17",
        _torch_mlp_batch,
        batch=2,
    ),
    Case(
        "attention",
        "LayerNorm MatMul Transpose Softmax, residual Add",
        "torch opset 17",
        _torch_attention,
    ),
    Case(
        "embedding",
        "Embedding (Gather) on int64 token ids, ReduceMean, Linear",
        "torch opset 13",
        _torch_embedding,
        int_high=8,
    ),
)


def _unary(op: str, opset: int, **attrs: Any) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        nodes = [helper.make_node(op, ["x"], ["y"], **attrs)]
        shape = [1, 3, 2, 2]
        _save(path, nodes, [_vi("x", shape)], [_vi("y", shape)], [], opset)

    return build


def _mod(path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Mod", ["r", "r"], ["y"], fmod=1),
    ]
    _save(path, nodes, [_vi("x", [1, 3, 2, 2])], [_vi("y", [1, 3, 2, 2])], [], 13)


def _conv_without_strides(path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    inits = [_const("w", np.full((3, 3, 3, 3), 0.1))]
    _save(path, nodes, [_vi("x", [1, 3, 2, 2])], [_vi("y", [1, 3, 2, 2])], inits, 13)


UNSUPPORTED: tuple[Unsupported, ...] = (
    Unsupported("mod", "Rem (ONNX Mod)", _mod),
    Unsupported("gelu_opset20", "Gelu (ONNX Gelu)", _unary("Gelu", 20)),
    Unsupported("lp_normalization", "LpNormalization", _unary("LpNormalization", 13, axis=1)),
    Unsupported("lrn", "Lrn (ONNX LRN)", _unary("LRN", 13, size=3)),
    Unsupported("conv_without_strides", "attribute 'stride' written out", _conv_without_strides),
)
