"""``verify``: the verdict on a proof for a bundle. Fails closed: anything unexpected is invalid."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prover.core import bundle as b
from prover.core import ezkl_backend
from prover.core.expected import expected_input_instances, load_bundle_inputs
from prover.core.progress import Progress, StepTimer
from prover.core.proofs import MalformedProof, parse_proof, read_proof_file
from prover.core.srs import DEV_UNSAFE
from prover.core.witness import decode_inputs, decode_outputs, hashed_part, instance_part
from prover.errors import ArtifactError

__all__ = ["VerifyResult", "verify"]


@dataclass(frozen=True)
class VerifyResult:
    """A verdict; ``outputs`` and ``input_hash`` come from verified instances, never from claims."""

    valid: bool
    proof_path: Path
    model_id: str
    reason: str = ""
    outputs: list[list[float]] | None = None
    inputs: list[list[float]] | None = None
    input_hash: list[str] | None = None
    output_hash: list[str] | None = None
    srs_provenance: str = ""
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The verdict as printed by ``zkinfer verify --json``."""
        return {
            "valid": self.valid,
            "proof": str(self.proof_path),
            "model_id": self.model_id,
            "reason": self.reason,
            "outputs": self.outputs,
            "inputs": self.inputs,
            "input_hash": self.input_hash,
            "output_hash": self.output_hash,
            "srs_provenance": self.srs_provenance,
            "warnings": self.warnings,
            "timings": self.timings,
        }


def verify(
    proof_path: Path,
    bundle_dir: Path,
    *,
    input_path: Path | None = None,
    bundle_digest: str | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """Check ``proof_path`` against the bundle; with ``input_path``, also that it proves that input.

    ``bundle_digest`` pins the whole bundle (the SHA-256 of its canonical manifest, printed by
    ``compile``): the manifest is not signed, so a CI that pins it knows which keys it trusts.

    Returns a verdict for anything about the proof itself (malformed, another model, tampered).
    Raises :class:`~prover.errors.ArtifactError` when the bundle or proof file cannot be used at
    all (missing, digest mismatch), since then there is no verdict to give.
    """
    timer = StepTimer(progress)
    with timer.step("check bundle", "digests of settings, verifying key and SRS"):
        bundle = b.load_bundle(Path(bundle_dir), check=b.VERIFY_FILES)
    if bundle_digest is not None and bundle.digest != bundle_digest.lower().removeprefix("0x"):
        raise ArtifactError(
            f"{bundle.root}: bundle digest {bundle.digest} is not the pinned {bundle_digest}; "
            "this is not the bundle you pinned (recompiled or changed)"
        )
    m = bundle.manifest
    proof_path = Path(proof_path)
    if not proof_path.is_file():
        raise ArtifactError(f"{proof_path}: no such proof file")
    warnings = []
    if bundle.srs_provenance == DEV_UNSAFE:
        warnings.append("bundle uses a dev-unsafe SRS: its proofs can be forged by the SRS creator")

    def invalid(reason: str) -> VerifyResult:
        return VerifyResult(
            valid=False,
            proof_path=proof_path,
            model_id=bundle.model_id,
            reason=reason,
            srs_provenance=bundle.srs_provenance,
            warnings=warnings,
            timings=timer.timings,
        )

    try:
        parsed = parse_proof(
            read_proof_file(proof_path),
            expected_instances=m["instances"]["total"],
            expected_bytes=m["proof_bytes"],
        )
    except MalformedProof as exc:
        return invalid(f"malformed proof: {exc}")
    claimed = parsed.claims.get("model_id")
    if claimed is not None and claimed != bundle.model_id:
        return invalid(
            f"the proof says it is for model {str(claimed)[:16]}..., not this bundle's "
            f"model {bundle.model_id[:16]}..."
        )
    if input_path is not None:
        values = load_bundle_inputs(bundle, Path(input_path), allow_out_of_range=True)
        if instance_part(parsed.instances, m, "input") != expected_input_instances(bundle, values):
            return invalid(f"the proof is not about the input in {input_path}")

    with timer.step("verify", "ezkl (halo2, KZG)"), tempfile.TemporaryDirectory() as tmp:
        canonical = Path(tmp) / "proof.json"
        canonical.write_text(json.dumps(parsed.canonical()))
        ok, why = ezkl_backend.verify(
            canonical, bundle.path(b.SETTINGS), bundle.path(b.VK), bundle.path(b.SRS)
        )
    if not ok:
        return invalid(why or "the proof does not verify")
    return VerifyResult(
        valid=True,
        proof_path=proof_path,
        model_id=bundle.model_id,
        outputs=decode_outputs(parsed.instances, m),
        inputs=decode_inputs(parsed.instances, m),
        input_hash=hashed_part(parsed.instances, m, "input"),
        output_hash=hashed_part(parsed.instances, m, "output"),
        srs_provenance=bundle.srs_provenance,
        warnings=warnings,
        timings=timer.timings,
    )
