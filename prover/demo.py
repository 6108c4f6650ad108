"""The end-to-end demo: compile a reference model, prove its sample, verify, show both outputs;
then the same inference over HTTP, proven by a worker process for the service; then, on a local
devnet, a dApp pays for the same inference and acts on the proven result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prover.core.compile import CompileOptions, compile_model
from prover.core.progress import Progress
from prover.core.prove import prove
from prover.core.verify import verify
from prover.errors import UsageError

__all__ = ["run_demo"]


def _label(outputs: list[list[float]] | None, labels: list[str] | None) -> str | None:
    """The class name of the largest proven output, when the model folder names its classes."""
    if not outputs or not labels or len(outputs[0]) != len(labels):
        return None
    scores = outputs[0]
    return labels[max(range(len(scores)), key=scores.__getitem__)]


def run_demo(
    model_dir: Path,
    workdir: Path,
    progress: Progress | None = None,
    *,
    chain: bool = True,
    http: bool = True,
) -> dict[str, Any]:
    """Run compile, prove and verify on ``model_dir`` (then one request over HTTP, with
    ``http``, and the on-chain flow, with ``chain``) and return every step's result."""
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
    labels_file = model_dir / "labels.json"
    labels = json.loads(labels_file.read_text()) if labels_file.is_file() else None
    payload = {
        "label": _label(verdict.outputs, labels),
        "compile": compiled.to_json(),
        "prove": proved.to_json(),
        "verify": verdict.to_json(),
    }
    if http and verdict.valid:
        from prover.http_demo import run_http_demo

        payload["http"] = run_http_demo(model_dir, workdir / model_dir.name / "http", progress)
    if chain and verdict.valid:
        from prover.chain.demo import run_chain_demo

        payload["chain"] = run_chain_demo(bundle, sample, progress)
    return payload
