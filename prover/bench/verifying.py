"""Verification cost per proof, for a CI user who checks one proof or a hundred.

The proofs are copies of one proof of the MLP's sample (verification does the same work for
every valid proof of a circuit, so copies cost what distinct proofs would). "one process" is a
single ``zkinfer verify P1 .. Pn --bundle B`` (the bundle opened and checked once, every proof
verified in that process); "per process" is one ``zkinfer verify P --bundle B`` process per
proof, the way a script that loops over files pays for it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from prover.bench.runner import measure, zkinfer_cmd
from prover.core.progress import StepTimer

__all__ = ["VerifyRow", "measure_verify"]


@dataclass(frozen=True)
class VerifyRow:
    """``proofs`` proofs verified both ways: total seconds and seconds per proof."""

    proofs: int
    one_process_s: float
    one_process_per_proof_s: float
    per_process_s: float
    per_process_per_proof_s: float


def measure_verify(
    bundle: Path, proof: Path, work: Path, *, count: int, timer: StepTimer
) -> VerifyRow:
    """Verify ``count`` copies of ``proof`` against ``bundle`` in one process, then one each."""
    folder = work / f"verify-{count}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paths = [folder / f"proof-{i:04d}.json" for i in range(count)]
    for path in paths:
        shutil.copyfile(proof, path)
    with timer.step(f"verify {count} proof(s) in one process"):
        one = measure(zkinfer_cmd("verify", *paths, "--bundle", bundle)).wall_s
    with timer.step(f"verify {count} proof(s), one process each"):
        each = sum(measure(zkinfer_cmd("verify", p, "--bundle", bundle)).wall_s for p in paths)
    return VerifyRow(
        proofs=count,
        one_process_s=round(one, 3),
        one_process_per_proof_s=round(one / count, 4),
        per_process_s=round(each, 3),
        per_process_per_proof_s=round(each / count, 4),
    )
