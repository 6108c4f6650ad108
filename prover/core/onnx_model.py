"""Reading untrusted ONNX files with limits, and running them in ONNX Runtime as the reference."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prover.core.hashing import FileIdentity
from prover.errors import ModelError

__all__ = ["MAX_NODES", "MAX_ONNX_BYTES", "OnnxInfo", "inspect_onnx", "run_onnxruntime"]

#: Uploaded models are parsed only below these sizes; a larger model would not prove on one
#: machine anyway and the limit keeps a hostile file from exhausting memory while parsing.
MAX_ONNX_BYTES = 256 * 1024 * 1024
MAX_NODES = 50_000
_ONNX_MAGIC_HINT = "export it with torch.onnx.export(..., opset_version=17) or onnx.save"


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: its name, element type and dimensions (ints or symbolic names)."""

    name: str
    elem_type: str
    dims: tuple[int | str, ...]

    def resolved(self, variables: dict[str, int]) -> tuple[int, ...]:
        """Dimensions with symbolic names replaced by ``variables`` (unknown ones become 1)."""
        return tuple(d if isinstance(d, int) else variables.get(d, 1) for d in self.dims)


@dataclass(frozen=True)
class OnnxInfo:
    """What zkinfer needs to know about a model before handing it to ezkl."""

    path: Path
    data: bytes
    opset: int
    op_types: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    symbolic_dims: tuple[str, ...]


def value_dims(value_info: Any) -> tuple[int | str, ...]:
    """A graph input's or output's dimensions: ints, or the symbolic name (``unk`` if none)."""
    dims: list[int | str] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "unk")
    return tuple(dims)


def _check_external_data(model: Any, folder: Path) -> None:
    """Refuse external-data references that point outside the model's folder."""
    from onnx.external_data_helper import uses_external_data

    root = folder.resolve()
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (root / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(root):
            raise ModelError(
                f"initializer {tensor.name!r} points at external data {location!r} outside the "
                f"model folder {root}; keep external data files next to the .onnx file"
            )
        if not target.is_file():
            raise ModelError(
                f"external data file {target} for initializer {tensor.name!r} is missing"
            )
        # The bundle holds one self-contained network.onnx; weights elsewhere would be neither
        # copied nor covered by the model id.
        raise ModelError(
            f"initializer {tensor.name!r} keeps its weights in external data ({location}); save "
            "the model as one file: onnx.save(model, path, save_as_external_data=False)"
        )


def inspect_onnx(path: Path, *, max_bytes: int = MAX_ONNX_BYTES) -> OnnxInfo:
    """Parse and check an ONNX file, returning its signature; raise :class:`ModelError` if unusable.

    The file is read once with a size limit, parsed without following external data, checked with
    the ONNX checker and for external-data paths escaping its folder.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file; pass the path of an .onnx model")
    if not path.is_file():
        raise ModelError(f"{path}: not a file; pass the path of an .onnx model")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"{path}: the file is empty; {_ONNX_MAGIC_HINT}")
    if size > max_bytes:
        raise ModelError(f"{path}: {size} bytes is over the {max_bytes}-byte limit for a model")
    data = path.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{path}: not a valid ONNX file (truncated or another format): {exc}; "
            f"{_ONNX_MAGIC_HINT}"
        ) from None
    if not model.graph.node:
        raise ModelError(f"{path}: the ONNX graph has no nodes (truncated or not a model)")
    if len(model.graph.node) > MAX_NODES:
        raise ModelError(f"{path}: {len(model.graph.node)} nodes is over the limit of {MAX_NODES}")
    _check_external_data(model, path.parent)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise ModelError(f"{path}: the ONNX checker rejects the model: {first}") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    custom = sorted({n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        raise ModelError(
            f"{path}: uses custom operator domains {custom}; ezkl supports only standard ONNX ops"
        )
    initializers = {t.name for t in model.graph.initializer}
    inputs = tuple(
        TensorSpec(
            v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type), value_dims(v)
        )
        for v in model.graph.input
        if v.name not in initializers
    )
    outputs = tuple(
        TensorSpec(
            v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type), value_dims(v)
        )
        for v in model.graph.output
    )
    if not inputs:
        raise ModelError(f"{path}: the model has no inputs to prove over")
    symbolic = tuple(sorted({d for s in inputs + outputs for d in s.dims if isinstance(d, str)}))
    return OnnxInfo(
        path=path,
        data=data,
        opset=opset,
        op_types=tuple(sorted({n.op_type for n in model.graph.node})),
        inputs=inputs,
        outputs=outputs,
        symbolic_dims=symbolic,
    )


#: ONNX Runtime sessions kept per model file identity: a long-running prover builds one per
#: bundle, not one per proof. Bounded, oldest dropped first.
_SESSIONS: OrderedDict[tuple[str, FileIdentity], tuple[Any, dict[str, Any]]] = OrderedDict()
_SESSIONS_KEPT = 4
_SESSIONS_LOCK = threading.Lock()


def _session(model_path: Path) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime session for the model file and the numpy dtype each input declares.

    Reused while the file keeps its identity (a replaced or rewritten model gets a new session).
    """
    import onnxruntime as ort

    from prover.core.dtypes import numpy_dtype_of_ort_type
    from prover.core.onnx_convert import reference_model

    before = FileIdentity.of(model_path)
    key = (str(Path(model_path).absolute()), before)
    with _SESSIONS_LOCK:
        if key in _SESSIONS:
            _SESSIONS.move_to_end(key)
            return _SESSIONS[key]
    started = time.time_ns()
    data, _ = reference_model(Path(model_path).read_bytes())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    declared = {i.name: numpy_dtype_of_ort_type(i.type) for i in session.get_inputs()}
    if FileIdentity.of(model_path) == before and before.settled_at(started):
        with _SESSIONS_LOCK:
            _SESSIONS[key] = (session, declared)
            while len(_SESSIONS) > _SESSIONS_KEPT:
                _SESSIONS.popitem(last=False)
    return session, declared


def run_onnxruntime(
    model_path: Path, arrays: list[np.ndarray], input_names: list[str]
) -> list[np.ndarray]:
    """Run the model in ONNX Runtime (single thread, CPU) and return every output as float64.

    Each input is fed with the element type the model declares (``int64`` token ids stay
    integers); a model older than ONNX Runtime implements runs as a converted copy
    (:func:`~prover.core.onnx_convert.reference_model`). The session is kept for the next call
    while the model file keeps its identity.
    """
    try:
        session, declared = _session(model_path)
        feeds = {
            name: arr.astype(declared.get(name, np.float32))
            for name, arr in zip(input_names, arrays, strict=True)
        }
        outs = session.run(None, feeds)
    except (ModelError, OSError):  # a conversion that failed, an unreadable file: as they are
        raise
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{model_path}: ONNX Runtime cannot run the model: {exc}") from None
    return [np.asarray(o, dtype=np.float64) for o in outs]
