"""``prove``: one checked input to one proof, its proven outputs beside ONNX Runtime's.

:func:`prove_values` takes the input as values and returns the proof in memory; :func:`prove`
reads an input file and writes the proof file atomically around it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.core import bundle as b
from prover.core import ezkl_backend, isolation
from prover.core.dtypes import explain_witness_failure, kind_of_ezkl_type
from prover.core.expected import (
    InputValues,
    check_bundle_inputs,
    expected_input_instances,
    load_bundle_inputs,
)
from prover.core.progress import Progress, StepTimer
from prover.core.slot_graph import circuit_input
from prover.core.witness import (
    compare_with_reference,
    decode_outputs,
    fidelity_problem,
    hashed_part,
    instance_part,
    onnxruntime_reference,
)
from prover.errors import CircuitError, UsageError

__all__ = [
    "ProveResult",
    "Proven",
    "ProvingSession",
    "prove",
    "prove_values",
    "proving_session",
]


@dataclass(frozen=True)
class Proven:
    """A proof made in memory and what it proves.

    ``document`` is the proof file's content (ezkl's proof JSON and the ``zkinfer`` claims).
    ``outputs`` are decoded from the proof's public instances (``None`` when outputs are hashed);
    ``circuit_outputs`` are the same values from the prover's witness, known to the prover even
    when only their hash is public.
    """

    document: dict[str, Any]
    model_id: str
    outputs: list[list[float]] | None
    circuit_outputs: list[list[float]]
    onnxruntime_outputs: list[list[float]]
    max_abs_diff: float
    input_hash: list[str] | None
    output_hash: list[str] | None
    warnings: list[str]
    srs_provenance: str
    timings: dict[str, float]

    def summary(self) -> dict[str, Any]:
        """Everything but the proof document, as ``zkinfer prove --json`` prints it."""
        return {
            "model_id": self.model_id,
            "outputs": self.outputs,
            "circuit_outputs": self.circuit_outputs,
            "onnxruntime_outputs": self.onnxruntime_outputs,
            "max_abs_diff": self.max_abs_diff,
            "input_hash": self.input_hash,
            "output_hash": self.output_hash,
            "warnings": self.warnings,
            "srs_provenance": self.srs_provenance,
            "timings": self.timings,
        }


@dataclass(frozen=True)
class ProveResult(Proven):
    """A proof written to ``proof_path`` and what it proves."""

    proof_path: Path

    def to_json(self) -> dict[str, Any]:
        """The result as printed by ``zkinfer prove --json``."""
        return {"proof": str(self.proof_path), **self.summary()}


@dataclass(frozen=True)
class ProvingSession:
    """A bundle opened for proving, its ezkl child already started (:func:`proving_session`).

    ``pending`` are the bundle's files still to check (``pk.key`` of a folder opened here): they
    are checked beside the witness, before ezkl's prove step reads them.
    """

    bundle: b.Bundle
    timer: StepTimer
    pending: tuple[str, ...]

    def prove(self, values: list[list[float]]) -> Proven:
        """Witness, proof and self-check for ``values`` already checked against the bundle."""
        return _prove(self.bundle, values, self.timer, self.pending)


@contextmanager
def proving_session(bundle_or_dir: b.Bundle | Path, timer: StepTimer) -> Iterator[ProvingSession]:
    """Open a bundle for proving inside the child that will run ezkl.

    The child (when isolation runs one) starts first: it imports ezkl while this process checks
    the bundle's digests and the input. A folder is opened and its digests checked; a
    :class:`~prover.core.bundle.Bundle` must have been loaded with ``check=PROVE_FILES``.
    """
    with isolation.isolated() as runner:  # witness and proof in one child with a memory limit
        if isinstance(runner, isolation.ChildProcess):
            runner.start()
        if isinstance(bundle_or_dir, b.Bundle):
            yield ProvingSession(bundle_or_dir, timer, ())
            return
        with timer.step("check bundle", "digests of circuit, verifying key and SRS"):
            bundle = b.load_bundle(Path(bundle_or_dir), check=b.WITNESS_FILES)
        yield ProvingSession(bundle, timer, (b.PK,))


def prove_values(
    bundle_or_dir: b.Bundle | Path,
    values: InputValues,
    *,
    allow_out_of_range: bool = False,
    progress: Progress | None = None,
) -> Proven:
    """Prove the model on ``values`` and return the proof document in memory.

    ``values`` is the parsed input: a list of per-input lists (``input_data``) or the whole
    document (``{"input_data": ...}`` or ``{"input": nested}``), checked exactly as an input file
    is (shape, NaN/inf, calibrated range, integer kinds; :class:`~prover.errors.InputError`
    names ``input``). A folder is opened and its digests checked; a :class:`~prover.core.bundle.
    Bundle` must have been loaded with ``check=PROVE_FILES``. The proof is verified before it is
    returned: a proof that does not verify is never handed out.
    """
    with proving_session(bundle_or_dir, StepTimer(progress)) as session:
        flat = check_bundle_inputs(session.bundle, values, allow_out_of_range=allow_out_of_range)
        return session.prove(flat)


def prove(
    bundle_dir: Path,
    input_path: Path,
    out: Path,
    *,
    allow_out_of_range: bool = False,
    progress: Progress | None = None,
) -> ProveResult:
    """Prove the model of ``bundle_dir`` on ``input_path`` and write the proof to ``out``.

    The input is checked before quantization (shape, NaN/inf, calibrated range), the witness is
    compared with ONNX Runtime, and the proof is verified locally before it is written: a proof that
    does not verify is never handed out.
    """
    timer = StepTimer(progress)
    out = Path(out)
    if out.is_dir():
        raise UsageError(
            f"{out} is a folder", field="out", hint="pass the path of the proof file to write"
        )
    if out.resolve().parent == Path(bundle_dir).resolve():
        raise UsageError(f"{out} is inside the bundle", field="out", hint="write proofs elsewhere")
    with proving_session(Path(bundle_dir), timer) as session:
        values = load_bundle_inputs(
            session.bundle, input_path, allow_out_of_range=allow_out_of_range
        )
        proven = session.prove(values)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(json.dumps(proven.document) + "\n")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return ProveResult(proof_path=out, **proven.__dict__)


def _prove(
    bundle: b.Bundle, values: list[list[float]], timer: StepTimer, pending: tuple[str, ...]
) -> Proven:
    """Witness, proof and self-check for checked ``values``; the document in memory.

    The ``pending`` files (``pk.key``) are checked, and ONNX Runtime computes the reference
    outputs, on threads of this process while the child makes the witness: this process would
    only wait for it. The proving key's check ends before ezkl's prove step reads it.
    """
    m = bundle.manifest
    names, shapes = [i.name for i in m.inputs], [i.shape for i in m.inputs]
    with (
        tempfile.TemporaryDirectory(prefix="zkinfer-prove-") as tmp_name,
        isolation.isolated(),  # the caller's child, or one of its own
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="zkinfer-prove") as pool,
    ):
        key_check = pool.submit(b.check_files, bundle, pending)
        reference = pool.submit(onnxruntime_reference, bundle.path(b.ONNX), names, shapes, values)
        tmp = Path(tmp_name)
        data = tmp / "input.json"
        data.write_text(json.dumps({"input_data": circuit_input(m, values)}))
        with timer.step("witness"):
            try:
                witness = ezkl_backend.gen_witness(
                    data,
                    bundle.path(b.COMPILED),
                    tmp / "witness.json",
                    bundle.path(b.VK),
                    bundle.path(b.SRS),
                )
            except CircuitError as exc:
                kinds = [kind_of_ezkl_type(t) for t in m.circuit.input_types]
                raise explain_witness_failure(exc, kinds, [i.name for i in m.inputs]) from None
        with timer.step("prove", f"logrows {m.circuit.logrows}"):
            key_check.result()  # a digest mismatch raises here, before ezkl reads pk.key
            doc = ezkl_backend.prove(
                tmp / "witness.json",
                bundle.path(b.COMPILED),
                bundle.path(b.PK),
                tmp / "proof.json",
                bundle.path(b.SRS),
            )
        # the circuit's output scales were checked against settings.json when it was loaded
        fidelity = compare_with_reference(reference.result(), witness, m.circuit.output_scales)
        with timer.step("verify"):
            ok, why = ezkl_backend.verify(
                tmp / "proof.json", bundle.path(b.SETTINGS), bundle.path(b.VK), bundle.path(b.SRS)
            )
        if not ok:
            raise CircuitError(f"the new proof does not verify against its own bundle: {why}")

    instances: list[str] = doc["instances"][0]
    outputs = decode_outputs(instances, m)
    input_hash, output_hash = (
        hashed_part(instances, m, "input"),
        hashed_part(instances, m, "output"),
    )
    problem = fidelity_problem(fidelity)
    warnings = [problem] if problem else []
    if instance_part(instances, m, "input") != expected_input_instances(bundle, values):
        raise CircuitError(
            "the proof's input instances do not match the input: refusing to write it"
        )
    doc.pop("pretty_public_inputs", None)  # ezkl's unverified rendering; ours is below
    doc["zkinfer"] = {
        "model_id": bundle.model_id,
        "bundle_digest": bundle.digest,
        "outputs": outputs,
        "input_hash": input_hash,
        "output_hash": output_hash,
        "onnxruntime_outputs": fidelity["onnxruntime"],
        "max_abs_diff": fidelity["max_abs_diff"],
        "srs_provenance": bundle.srs_provenance,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "claims for people; verification uses only instances and proof",
    }
    return Proven(
        document=doc,
        model_id=bundle.model_id,
        outputs=outputs,
        circuit_outputs=fidelity["circuit"],
        onnxruntime_outputs=fidelity["onnxruntime"],
        max_abs_diff=fidelity["max_abs_diff"],
        input_hash=input_hash,
        output_hash=output_hash,
        warnings=warnings,
        srs_provenance=bundle.srs_provenance,
        timings=timer.timings,
    )
