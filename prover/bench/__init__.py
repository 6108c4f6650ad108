"""``zkinfer bench``: the cost of each verified inference, measured side by side in one run.

Sections (each can be chosen with ``--only``):

- ``overhead``: zkinfer's prove path against bare ezkl (``gen_witness`` + ``prove``) on the same
  bundle and input, per reference model, per process and in one long-lived process;
- ``batch``: proving time per inference of the MLP at batch 1, 8, 16 and 64 (logrows, proving
  key size, peak memory);
- ``gas``: gas per settled inference, ``fulfill`` against ``fulfillBatch`` (anvil, real verifier);
- ``service``: throughput and latency of ``zkinfer serve`` with 1 and 2 workers, batched or not;
- ``verify``: seconds per proof for 1 and 100 proofs, in one process and one process each.

Every figure comes from a real run on this machine; a section that cannot be measured in this
build says so (``not_measured``) instead of giving a number. Nothing here asserts a speed.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prover.bench.batching import BatchRow, measure_batch
from prover.bench.gas import GasReport, market_settles_batches, measure_gas
from prover.bench.overhead import OverheadRow, measure_overhead
from prover.bench.runner import Bundles, ModelFiles
from prover.bench.service import ServiceRow, measure_service
from prover.bench.verifying import VerifyRow, measure_verify
from prover.core.progress import Progress, StepTimer
from prover.errors import UsageError
from prover.version import EZKL_VERSION

__all__ = ["SECTIONS", "BenchOptions", "BenchResult", "parse_sections", "run_bench"]

SECTIONS = ("overhead", "batch", "gas", "service", "verify")
BATCH_MODEL = "breast_cancer_mlp"  # the tabular MLP, exported with a symbolic batch axis


def parse_sections(text: str | None) -> tuple[str, ...]:
    """``overhead,batch`` -> the sections in their canonical order; None means all of them."""
    if text is None or not text.strip():
        return SECTIONS
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(SECTIONS))
    if unknown:
        raise UsageError(
            f"{', '.join(unknown)}: no such section", field="only", hint=f"use {','.join(SECTIONS)}"
        )
    return tuple(s for s in SECTIONS if s in wanted)


@dataclass(frozen=True)
class BenchOptions:
    """What one run measures; :meth:`quick` is the smoke-run variant (seconds, not minutes)."""

    models: tuple[Path, ...]
    sections: tuple[str, ...] = SECTIONS
    repeat: int = 3
    batch_sizes: tuple[int, ...] = (1, 8, 16, 64)
    gas_batches: tuple[int, ...] = (4, 16, 64)
    verify_counts: tuple[int, ...] = (1, 100)
    service_requests: int = 16
    service_workers: tuple[int, ...] = (1, 2)
    service_batch: int = 8
    in_process: bool = True
    quick: bool = False

    @classmethod
    def quick_run(cls, models: tuple[Path, ...], sections: tuple[str, ...]) -> BenchOptions:
        """One model, one repetition, small batches: checks that every section runs."""
        batch_model = tuple(m for m in models if m.name == BATCH_MODEL) or models[:1]
        return cls(
            models=batch_model,
            sections=sections,
            repeat=1,
            batch_sizes=(1, 4),
            gas_batches=(4,),
            verify_counts=(1, 3),
            service_requests=2,
            service_workers=(1,),
            service_batch=4,
            in_process=False,
            quick=True,
        )

    def batch_model(self) -> ModelFiles:
        """The model of the batch, gas, service and verify sections."""
        for m in self.models:
            if m.name == BATCH_MODEL:
                return ModelFiles(m)
        raise UsageError(
            f"the batch sections need models/{BATCH_MODEL} (exported with a symbolic batch axis)",
            field="models",
        )


@dataclass(frozen=True)
class BenchResult:
    """Every section's figures (None for a section not run) and the run's conditions."""

    context: dict[str, Any]
    overhead: list[OverheadRow] | None = None
    batch: list[BatchRow] | None = None
    gas: GasReport | None = None
    service: list[ServiceRow] | None = None
    service_not_measured: str | None = None
    verify: list[VerifyRow] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The figures as ``zkinfer bench --json`` prints them."""
        out: dict[str, Any] = {"context": self.context, "timings": self.timings}
        if self.overhead is not None:
            out["overhead"] = [asdict(r) for r in self.overhead]
        if self.batch is not None:
            out["batch"] = [asdict(r) for r in self.batch]
        if self.gas is not None:
            out["gas"] = asdict(self.gas)
        if self.service is not None:
            out["service"] = {
                "rows": [asdict(r) for r in self.service],
                "not_measured": self.service_not_measured,
            }
        if self.verify is not None:
            out["verify"] = [asdict(r) for r in self.verify]
        return out


def _context(options: BenchOptions, load_before: float) -> dict[str, Any]:
    """The run's conditions; the load averages say how busy the machine was (noise)."""
    return {
        "on": time.strftime("%Y-%m-%d", time.gmtime()),
        "cpu": f"{os.cpu_count()} cores {platform.machine()}",
        "load": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "ezkl": EZKL_VERSION,
        "srs": "dev (cached)",
        "repeat": options.repeat,
        "quick": options.quick,
        "sections": list(options.sections),
    }


def run_bench(options: BenchOptions, work: Path, progress: Progress | None = None) -> BenchResult:
    """Run the chosen sections in order, sharing the compiled bundles between them."""
    if options.repeat < 1:
        raise UsageError(f"{options.repeat}: must be at least 1", field="repeat")
    timer = StepTimer(progress)
    load_before = os.getloadavg()[0]
    work.mkdir(parents=True, exist_ok=True)
    bundles = Bundles(work / "bundles")
    wants = set(options.sections)
    found: dict[str, Any] = {}
    if "overhead" in wants:
        found["overhead"] = [
            measure_overhead(
                ModelFiles(folder),
                bundles,
                work,
                repeat=options.repeat,
                in_process=options.in_process,
                timer=timer,
            )
            for folder in options.models
        ]
    needs_mlp = wants & {"batch", "gas", "service", "verify"}
    mlp = options.batch_model() if needs_mlp else None
    if "batch" in wants and mlp is not None:
        found["batch"] = [
            measure_batch(mlp, bundles, work, batch=n, repeat=options.repeat, timer=timer)
            for n in options.batch_sizes
        ]
    if "gas" in wants and mlp is not None:
        spec = {}
        for n in (1, *(options.gas_batches if market_settles_batches() else ())):
            with timer.step(f"gas: bundle of batch {n}"):
                compiled = bundles.get(mlp, n)
            spec[n] = (compiled.root, compiled.sample)
        with timer.step("gas: deploy, request and settle on anvil"):
            found["gas"] = measure_gas(spec, work / "gas")
    if "service" in wants and mlp is not None:
        served = {}
        for n in (1, options.service_batch):
            with timer.step(f"service: bundle of batch {n}"):
                served[n] = bundles.get(mlp, n).root
        rows, why = measure_service(
            served,
            mlp.rows(),
            work / "service",
            requests=options.service_requests,
            workers=options.service_workers,
            timer=timer,
        )
        found["service"], found["service_not_measured"] = rows, why
    if "verify" in wants and mlp is not None:
        with timer.step("verify: bundle of batch 1"):
            compiled = bundles.get(mlp)
        proof = work / "verify-proof.json"
        with timer.step("verify: one proof of the sample"):
            from prover.core.prove import prove

            prove(compiled.root, mlp.sample, proof)
        found["verify"] = [
            measure_verify(compiled.root, proof, work, count=n, timer=timer)
            for n in options.verify_counts
        ]
    return BenchResult(context=_context(options, load_before), timings=timer.timings, **found)
