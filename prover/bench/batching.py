"""Proving cost per inference with batching: one proof over N inputs of the tabular MLP.

For each batch size the MLP (exported with a symbolic batch axis) is compiled from cold with
``--batch N`` and ``zkinfer prove`` is run on N sample rows in its own process; the figures are
the whole command's wall time and ezkl's proving step alone (from the command's own timings),
each divided by N, beside logrows, the proving key's size and the process's peak memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prover.bench.runner import Bundles, ModelFiles, measure, median, zkinfer_cmd
from prover.core.progress import StepTimer

__all__ = ["BatchRow", "measure_batch"]


@dataclass(frozen=True)
class BatchRow:
    """One batch size: compile and prove costs, total and per inference."""

    batch: int
    logrows: int
    pk_bytes: int
    compile_s: float
    prove_s: float
    prove_step_s: float
    per_inference_s: float
    per_inference_step_s: float
    prove_peak_mib: float


def measure_batch(
    model: ModelFiles, bundles: Bundles, work: Path, *, batch: int, repeat: int, timer: StepTimer
) -> BatchRow:
    """Compile ``model`` for ``batch`` inputs per proof and time ``zkinfer prove`` on it."""
    with timer.step(f"{model.name} batch {batch}: compile (cold)"):
        compiled = bundles.get(model, batch)
    walls, steps, peak = [], [], 0.0
    with timer.step(f"{model.name} batch {batch}: prove x{repeat}"):
        for _ in range(repeat):
            ran = measure(
                zkinfer_cmd(
                    "prove", compiled.root, "--input", compiled.sample,
                    "--out", work / f"{model.name}-batch-{batch}.json", "--json",
                )
            )  # fmt: skip
            walls.append(ran.wall_s)
            steps.append(float(json.loads(ran.stdout)["timings"]["prove"]))
            peak = max(peak, ran.peak_mib)
    wall, step = median(walls), median(steps)
    return BatchRow(
        batch=batch,
        logrows=compiled.logrows,
        pk_bytes=compiled.pk_bytes,
        compile_s=compiled.compile_s,
        prove_s=wall,
        prove_step_s=step,
        per_inference_s=round(wall / batch, 4),
        per_inference_step_s=round(step / batch, 4),
        prove_peak_mib=round(peak),
    )
