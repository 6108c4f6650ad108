"""Export a torch model to ONNX for ezkl, and write ezkl input files.

``export_torch`` writes an ONNX file with a fixed batch dimension of 1 (ezkl circuits have
static shapes), or with a symbolic leading batch axis that ``zkinfer compile --batch N`` fixes at
settings time (1 by default), and then checks, in onnxruntime, that the file computes what the
torch model computes. A file that disagrees is never handed on silently: ``ExportMismatch`` is
raised.

torch is an optional extra (``pip install 'zkinfer[export]'``), so it is imported only inside
``export_torch``; importing this module does not need it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prover.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["ExportMismatch", "ExportReport", "export_torch", "write_input_json"]

_TORCH_MISSING = "torch is needed for export: pip install 'zkinfer[export]' (torch==2.13.0)"


class ExportMismatch(ModelError):
    """The exported ONNX file's outputs differ from torch's beyond the stated tolerance."""


@dataclass(frozen=True)
class ExportReport:
    """What ``export_torch`` wrote and how closely onnxruntime matched torch.

    ``max_abs_diff`` is the largest absolute difference over all ``n_checked`` inputs.
    """

    path: Path
    max_abs_diff: float
    atol: float
    rtol: float
    n_checked: int


def export_torch(
    model: torch.nn.Module,
    sample: torch.Tensor,
    out_path: Path,
    *,
    check_inputs: torch.Tensor | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    batch_axis: str | None = None,
) -> ExportReport:
    """Export ``model`` to ``out_path`` as ONNX (opset 17) and verify it in onnxruntime.

    ``sample`` must have batch dimension 1; the ONNX graph has exactly that fixed shape, with
    one input named ``input`` and one output named ``output``. With ``batch_axis`` (e.g.
    ``"batch"``) the leading dimension of both is that symbolic name instead, every other one
    stays fixed, and ``check_inputs`` is also run as one whole batch. The exported file is run on
    ``sample`` and then on each row of ``check_inputs`` (a batch, run one row at a time, each
    reshaped to ``sample``'s shape) and compared to torch with
    ``|onnx - torch| <= atol + rtol * |torch|`` elementwise.

    The model is put in eval mode. ``out_path`` is written only once every check has passed
    (the export goes to a sibling temporary file first), so a file that disagrees with torch is
    never left behind. Raises ``ExportMismatch`` on the first input that fails, naming the max
    absolute difference and the tolerance; raises ``ImportError`` if torch is not installed.
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError(_TORCH_MISSING) from exc
    import onnxruntime as ort  # a core dependency, but only export needs it at run time

    if sample.shape[0] != 1:
        raise ValueError(f"sample must have batch dimension 1, got shape {tuple(sample.shape)}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".tmp")
    inputs = [sample]
    if check_inputs is not None:
        inputs.extend(row.reshape(sample.shape) for row in check_inputs)
        if batch_axis is not None:  # the symbolic axis must really take any batch size
            inputs.append(check_inputs.reshape(-1, *sample.shape[1:]))
    dynamic_axes = (
        {"input": {0: batch_axis}, "output": {0: batch_axis}} if batch_axis is not None else None
    )

    model.eval()
    try:
        # dynamo=False: the TorchScript exporter gives small, plain graphs that ezkl
        # understands; dynamic_axes only for the leading batch axis, which ezkl fixes at
        # settings time (PyRunArgs.variables), since every other shape must be static.
        torch.onnx.export(
            model,
            (sample,),
            str(tmp_path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
        session = ort.InferenceSession(str(tmp_path), providers=["CPUExecutionProvider"])
        max_abs_diff = 0.0
        with torch.no_grad():
            for i, x in enumerate(inputs):
                expected = model(x).detach().cpu().numpy().astype(np.float64)
                got_raw: Any = session.run(["output"], {"input": x.detach().cpu().numpy()})[0]
                got = np.asarray(got_raw, dtype=np.float64)
                if got.shape != expected.shape:
                    raise ExportMismatch(
                        f"{out_path}, input {i}: onnx output shape {got.shape} "
                        f"!= torch output shape {expected.shape}"
                    )
                diff = np.abs(got - expected)
                worst = float(diff.max(initial=0.0))
                max_abs_diff = max(max_abs_diff, worst)
                if not np.all(diff <= atol + rtol * np.abs(expected)):
                    raise ExportMismatch(
                        f"{out_path}, input {i}: onnxruntime differs from torch by up to "
                        f"{worst:.3g} (tolerance atol={atol:g}, rtol={rtol:g}); not written"
                    )
        tmp_path.replace(out_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return ExportReport(
        path=out_path, max_abs_diff=max_abs_diff, atol=atol, rtol=rtol, n_checked=len(inputs)
    )


def write_input_json(path: Path, rows: list[list[float]]) -> None:
    """Write ``rows`` as an ezkl data file for a model with a single input.

    Every row is one flattened sample of the model input. The file is
    ``{"input_data": [r0 + r1 + ... + rn]}``: ONE list for the one model input, holding all
    samples concatenated. ezkl 23.0.5 splits a list longer than the input's element count into
    consecutive chunks of that size and treats each chunk as one sample (a length that is not a
    multiple fails: "calibration data length (=961) must be evenly divisible by the original
    input_size(=30)"). So the same format serves ``input.json`` (one row, for gen_witness) and
    ``calibration.json`` (many rows, for calibrate_settings, which then sizes its lookup ranges
    over all of them).

    Do not write ``{"input_data": [r0, r1, ...]}`` for a single-input model: ezkl reads the
    outer list as one entry per model input and silently calibrates on ``r0`` alone (checked:
    the same settings as a file holding only ``r0``). Rows must all have the same length.
    """
    if not rows:
        raise ValueError("write_input_json needs at least one row")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("all rows must have the same length (one flattened model input each)")
    flat = [float(v) for row in rows for v in row]
    Path(path).write_text(json.dumps({"input_data": [flat]}) + "\n")
