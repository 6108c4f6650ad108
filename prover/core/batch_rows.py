"""Whether a batch model's rows are independent: row s of every output depends only on row s of
every input.

A bundle compiled with a batch size N > 1 gets N slots (:mod:`prover.core.slot_layout`) from the
tensors' shapes alone, and a slot's proven outputs are read as the model's outputs for that slot's
input. That only holds when the model does not mix the batch axis: a reduction or normalization
over axis 0 lets the other rows (padding chosen by whoever proves) steer a slot's outputs. Compile
runs the model in ONNX Runtime on the sample batch and on variants of it before any ezkl step and
refuses a model whose outputs move with other rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from prover.core.onnx_model import run_onnxruntime
from prover.errors import ModelError

__all__ = ["ROW_ATOL", "ROW_RTOL", "check_rows_independent"]

#: Tolerances of the comparison: ONNX Runtime's kernels may round differently with another batch.
ROW_RTOL = 1e-4
ROW_ATOL = 1e-5

_Rows = Callable[[np.ndarray], np.ndarray]


def _variants(batch: int) -> list[tuple[str, _Rows, _Rows, list[int]]]:
    """(what it is, how it changes each input, what it expects of each output, rows compared).

    The expectation maps the sample's outputs to what the variant's outputs must be on the
    compared rows."""
    if batch < 2:
        return []

    def rotate(a: np.ndarray) -> np.ndarray:
        return np.roll(a, -1, axis=0)  # slot s gets row s+1 (mod N)

    def copies_of_row_0(a: np.ndarray) -> np.ndarray:
        return np.repeat(a[:1], batch, axis=0)

    def zeros_after_row_0(a: np.ndarray) -> np.ndarray:
        out = np.zeros_like(a)
        out[0] = a[0]
        return out

    every = list(range(batch))
    return [
        ("the sample's rows rotated by one", rotate, rotate, every),
        ("every row replaced by row 0", copies_of_row_0, copies_of_row_0, every),
        ("every row but 0 replaced by zeros", zeros_after_row_0, lambda a: a, [0]),
    ]


def _first_moved_row(
    got: list[np.ndarray], want: list[np.ndarray], rows: list[int]
) -> tuple[int, int] | None:
    """(output index, row) of the first compared row that differs, or ``None``."""
    for t, (g, w) in enumerate(zip(got, want, strict=True)):
        for s in rows:
            if not np.allclose(g[s], w[s], rtol=ROW_RTOL, atol=ROW_ATOL, equal_nan=True):
                return t, s
    return None


def check_rows_independent(
    onnx_data: bytes,
    names: list[str],
    shapes: list[tuple[int, ...]],
    values: list[list[float]],
    batch: int,
) -> None:
    """Raise :class:`~prover.errors.ModelError` (field ``batch_size``) unless, under ONNX Runtime,
    the model's outputs on ``values`` (the batch sample, one flat list per input of ``shapes``)
    move with their rows: rotating the rows rotates the outputs, and changing the other rows
    leaves a row's outputs as they were.

    Does nothing for a batch of 1, or when some input or output does not lead with ``batch``
    (such a bundle has no slots). A pass is evidence on these inputs, not a proof for every input.
    """
    if batch < 2 or any(not s or s[0] != batch for s in shapes):
        return
    arrays = [
        np.asarray(v, dtype=np.float64).reshape(s) for v, s in zip(values, shapes, strict=True)
    ]
    with tempfile.TemporaryDirectory(prefix="zkinfer-rows.") as folder:
        path = Path(folder) / "network.onnx"
        path.write_bytes(onnx_data)
        sample = run_onnxruntime(path, arrays, names)
        if any(o.ndim == 0 or o.shape[0] != batch for o in sample):
            return
        for what, change, expect, rows in _variants(batch):
            got = run_onnxruntime(path, [change(a) for a in arrays], names)
            moved = _first_moved_row(got, [expect(o) for o in sample], rows)
            if moved is not None:
                t, s = moved
                raise ModelError(
                    f"row {s} of the outputs depends on other rows of the batch (output {t} "
                    f"changed with {what}): the model mixes the batch axis (e.g. a reduction or "
                    "normalization over axis 0), so its slots cannot be proven independently",
                    field="batch_size",
                    hint="compile with batch 1, or export a model whose rows are independent",
                )
