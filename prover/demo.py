"""The end-to-end demo: compile a reference model, prove its sample, verify, show both outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prover.core.compile import CompileOptions, compile_model
from prover.core.progress import Progress
from prover.core.prove import prove
from prover.core.verify import verify
from prover.errors import UsageError

__all__ = ["run_demo"]


def run_demo(model_dir: Path, workdir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Run compile, prove and verify on ``model_dir`` and return every step's result."""
    onnx, sample = model_dir / "network.onnx", model_dir / "input.json"
    if not onnx.is_file() or not sample.is_file():
        raise UsageError(
            f"{model_dir}: not a reference model folder (needs network.onnx, input.json)"
        )
    calibration = model_dir / "calibration.json"
    bundle = workdir / model_dir.name / "bundle"
    proof = workdir / model_dir.name / "proof.json"
    compiled = compile_model(
        onnx,
        sample,
        bundle,
        calibration=calibration if calibration.is_file() else None,
        options=CompileOptions(dev_srs=True),
        progress=progress,
    )
    proved = prove(bundle, sample, proof, progress=progress)
    verdict = verify(proof, bundle, input_path=sample, progress=progress)
    return {
        "compile": compiled.to_json(),
        "prove": proved.to_json(),
        "verify": verdict.to_json(),
    }
