"""Compiling a model for the service: ``zkinfer compile --json`` in a child process with a memory
limit and a timeout (:mod:`prover.service.children`), so a hostile or oversized upload cannot
take the service down."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from prover.core.inputs import load_inputs
from prover.core.onnx_model import inspect_onnx
from prover.errors import InputError
from prover.service.children import ChildFailed, describe_exit, run_once

__all__ = ["CompileFailed", "CompileJob", "check_upload", "compile_in_subprocess"]


class CompileFailed(RuntimeError):
    """The model could not be compiled; the message is the reason shown to its owner."""


@dataclass(frozen=True)
class CompileJob:
    """What to compile, and where the bundle goes."""

    onnx: Path
    sample: Path
    calibration: Path | None
    out: Path
    input_visibility: str = "public"
    output_visibility: str = "public"
    dev_srs: bool = False

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "prover", "compile", str(self.onnx)]
        args += ["--sample", str(self.sample), "--out", str(self.out), "--json"]
        args += ["--input-visibility", self.input_visibility]
        args += ["--output-visibility", self.output_visibility, "--param-visibility", "fixed"]
        if self.calibration is not None:
            args += ["--calibration", str(self.calibration)]
        if self.dev_srs:
            args.append("--dev-srs")
        return args


def check_upload(onnx: Path, sample: Path, calibration: Path | None) -> None:
    """The checks an upload must pass before anything is stored: a well-formed, self-contained
    ONNX file (size and node limits, no external data) and inputs that match its inputs."""
    info = inspect_onnx(onnx)
    n = len(info.inputs)
    load_inputs(sample, n)
    if calibration is not None:
        load_inputs(calibration, n)
    if any(not isinstance(d, int) for spec in info.inputs for d in spec.dims[1:]):
        raise InputError("onnx: only the leading (batch) dimension of an input may be symbolic")


async def compile_in_subprocess(job: CompileJob, *, memory_bytes: int, timeout_s: float) -> str:
    """Compile ``job``; returns the bundle digest, raises :class:`CompileFailed` with the reason."""
    try:
        done = await run_once(
            job.command(), memory_bytes=memory_bytes, timeout_s=timeout_s, what="compiling"
        )
    except ChildFailed as exc:
        raise CompileFailed(str(exc)) from None
    doc = done.doc
    if done.returncode == 0 and isinstance(doc, dict) and doc.get("ok"):
        return str(doc["bundle_digest"])
    if done.returncode < 0:
        raise CompileFailed(f"the compiler {describe_exit(done.returncode, memory_bytes)}")
    error = doc.get("error") if isinstance(doc, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    detail = f": {done.stderr_tail}" if done.stderr_tail else ""
    raise CompileFailed(str(message or f"the compiler exited with {done.returncode}{detail}"))
