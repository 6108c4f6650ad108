"""``verify``: the verdict on a proof for a bundle. Fails closed: anything unexpected is invalid."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prover.core import bundle as b
from prover.core import ezkl_backend
from prover.core.expected import InputValues
from prover.core.expected_input import ExpectedInput
from prover.core.progress import Progress, StepTimer
from prover.core.proofs import (
    MalformedProof,
    ParsedProof,
    claims_problem,
    parse_proof,
    read_proof_file,
)
from prover.core.slots import require_slots, slot_inputs, slot_outputs
from prover.core.srs import DEV_UNSAFE
from prover.core.witness import decode_inputs, decode_outputs, hashed_part, instance_part
from prover.errors import ArtifactError, UsageError

__all__ = [
    "CheckerFactory",
    "ExpectedInput",
    "ProofCheck",
    "VerifyResult",
    "bundle_warnings",
    "open_bundle",
    "verify",
    "verify_document",
    "verify_proof",
    "verify_values",
]


#: Checks a structurally valid proof cryptographically: ``(valid, reason)``. The default is ezkl
#: in-process; the chain layer supplies one that asks a deployed verifier contract instead.
ProofCheck = Callable[[ParsedProof], tuple[bool, str]]
#: Makes the :data:`ProofCheck` for an opened bundle (it may check the bundle against a contract).
CheckerFactory = Callable[[b.Bundle], ProofCheck]


def ezkl_check(bundle: b.Bundle) -> ProofCheck:
    """The local check: ezkl's Halo2/KZG verifier with the bundle's settings, key and SRS."""

    def check(parsed: ParsedProof) -> tuple[bool, str]:
        with tempfile.TemporaryDirectory() as tmp:
            canonical = Path(tmp) / "proof.json"
            canonical.write_text(json.dumps(parsed.canonical()))
            ok, why = ezkl_backend.verify(
                canonical, bundle.path(b.SETTINGS), bundle.path(b.VK), bundle.path(b.SRS)
            )
        return ok, why

    return check


@dataclass(frozen=True)
class VerifyResult:
    """A verdict; ``outputs`` and ``input_hash`` come from verified instances, never from claims."""

    valid: bool
    proof_path: Path | None  # None for a proof document verified in memory
    model_id: str
    reason: str = ""
    outputs: list[list[float]] | None = None
    inputs: list[list[float]] | None = None
    input_hash: list[str] | None = None
    output_hash: list[str] | None = None
    srs_provenance: str = ""
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    checked_by: str = "ezkl"
    #: the slot of a batch proof asked about: then ``outputs`` and ``inputs`` are that slot's
    slot: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The verdict as printed by ``zkinfer verify --json``."""
        return {
            "valid": self.valid,
            "proof": None if self.proof_path is None else str(self.proof_path),
            "model_id": self.model_id,
            "reason": self.reason,
            "outputs": self.outputs,
            "inputs": self.inputs,
            "input_hash": self.input_hash,
            "output_hash": self.output_hash,
            "srs_provenance": self.srs_provenance,
            "warnings": self.warnings,
            "timings": self.timings,
            "checked_by": self.checked_by,
            "slot": self.slot,
        }


def open_bundle(
    bundle_dir: Path, *, bundle_digest: str | None = None, timer: StepTimer | None = None
) -> b.Bundle:
    """Load a bundle for verifying: the digests of the files verify reads, and the optional pin.

    ``bundle_digest`` pins the whole bundle (the SHA-256 of its canonical manifest, printed by
    ``compile``): the manifest is not signed, so a CI that pins it knows which keys it trusts.
    Raises :class:`~prover.errors.ArtifactError` when the bundle cannot be used at all.
    """
    timer = timer or StepTimer()
    pinned = None if bundle_digest is None else _pinned_digest(bundle_digest)
    with timer.step("check bundle", "digests of settings, verifying key and SRS"):
        bundle = b.load_bundle(Path(bundle_dir), check=b.VERIFY_FILES)
    if pinned is not None and bundle.digest != pinned:
        raise ArtifactError(
            f"{bundle.root}: bundle digest {bundle.digest} is not the pinned {bundle_digest}; "
            "this is not the bundle you pinned (recompiled or changed)"
        )
    return bundle


def _pinned_digest(value: str) -> str:
    """A pinned bundle digest, normalised; :class:`UsageError` unless it is 64 hex digits."""
    digest = value.strip().lower().removeprefix("0x")
    if len(digest) != 64:
        raise UsageError(
            f"bundle digest {value!r}: wrong length ({len(digest)} hex digits; a bundle digest "
            "is the full SHA-256 of 64 that compile prints, not a prefix)"
        )
    if any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(f"bundle digest {value!r}: not hexadecimal")
    return digest


def bundle_warnings(bundle: b.Bundle) -> list[str]:
    """Warnings that hold for every proof checked against ``bundle``."""
    if bundle.srs_provenance == DEV_UNSAFE:
        return ["bundle uses a dev-unsafe SRS: its proofs can be forged by the SRS creator"]
    return []


def _invalid(
    bundle: b.Bundle,
    proof_path: Path | None,
    reason: str,
    timer: StepTimer,
    checked_by: str,
    slot: int | None = None,
) -> VerifyResult:
    return VerifyResult(
        valid=False,
        proof_path=proof_path,
        model_id=bundle.model_id,
        reason=reason,
        srs_provenance=bundle.srs_provenance,
        warnings=bundle_warnings(bundle),
        timings=timer.timings,
        checked_by=checked_by,
        slot=slot,
    )


def verify_proof(
    bundle: b.Bundle,
    proof_path: Path,
    *,
    expected_input: ExpectedInput | None = None,
    timer: StepTimer | None = None,
    check: ProofCheck | None = None,
    checked_by: str = "ezkl",
    slot: int | None = None,
) -> VerifyResult:
    """The verdict on one proof file for a bundle already opened with :func:`open_bundle`.

    Reads the file and gives its content to :func:`verify_document` (see there); a file that is
    not JSON or too large is an invalid proof. Raises :class:`~prover.errors.ArtifactError`
    when the proof file does not exist, ``OSError`` when it cannot be read.
    """
    timer = timer or StepTimer()
    proof_path = Path(proof_path)
    if not proof_path.is_file():
        raise ArtifactError(f"{proof_path}: no such proof file")
    try:
        document = read_proof_file(proof_path)
    except MalformedProof as exc:
        return _invalid(bundle, proof_path, f"malformed proof: {exc}", timer, checked_by, slot)
    return verify_document(
        bundle,
        document,
        expected_input=expected_input,
        timer=timer,
        check=check,
        checked_by=checked_by,
        proof_path=proof_path,
        slot=slot,
    )


def verify_document(
    bundle: b.Bundle,
    document: Any,
    *,
    expected_input: ExpectedInput | None = None,
    timer: StepTimer | None = None,
    check: ProofCheck | None = None,
    checked_by: str = "ezkl",
    proof_path: Path | None = None,
    slot: int | None = None,
) -> VerifyResult:
    """The verdict on a parsed proof document for a bundle already opened with :func:`open_bundle`.

    ``check`` (default: ezkl in-process) decides on the cryptography once the proof's structure,
    claims and input have passed; ``checked_by`` names it in the result, ``proof_path`` (if the
    document came from a file) too.

    With ``slot`` (a slot of a batch bundle), the result's ``outputs`` and ``inputs`` are that
    slot's, and ``expected_input`` (made with the same ``slot``) is one slot's input that the
    slot's input instances must carry; the proof is checked as a whole either way.

    Returns a verdict for anything about the proof itself (malformed, another model, tampered,
    another input). Raises :class:`~prover.errors.InputError` when ``expected_input`` is not a
    usable input for the bundle, :class:`~prover.errors.UsageError` (field ``slot``) for a slot
    the bundle does not have.
    """
    timer = timer or StepTimer()
    m = bundle.manifest
    warnings = bundle_warnings(bundle)
    if slot is not None:
        require_slots(m).check_slot(slot)
    if expected_input is not None and expected_input.slot != slot:
        raise TypeError("expected_input must be made for the slot verified")

    def invalid(reason: str) -> VerifyResult:
        return _invalid(bundle, proof_path, reason, timer, checked_by, slot)

    try:
        parsed = parse_proof(
            document,
            expected_instances=m.instances.total,
            expected_bytes=bundle.proof_bytes,
        )
    except MalformedProof as exc:
        return invalid(f"malformed proof: {exc}")
    claimed = parsed.claims.get("model_id")
    if claimed is not None and claimed != bundle.model_id:
        return invalid(
            f"the proof says it is for model {str(claimed)[:16]}..., not this bundle's "
            f"model {bundle.model_id[:16]}..."
        )
    outputs = decode_outputs(parsed.instances, m)
    input_hash = hashed_part(parsed.instances, m, "input")
    output_hash = hashed_part(parsed.instances, m, "output")
    problem = claims_problem(
        parsed.claims,
        {
            "model_id": bundle.model_id,
            "outputs": outputs,
            "input_hash": input_hash,
            "output_hash": output_hash,
            "srs_provenance": bundle.srs_provenance,
        },
    )
    if problem:
        return invalid(f"inconsistent proof document: {problem}")
    if expected_input is not None and (
        _input_instances(parsed.instances, bundle, slot) != expected_input.instances()
    ):
        return invalid(f"the proof is not about {expected_input.described}")

    with timer.step("verify", checked_by):
        ok, why = (check or ezkl_check(bundle))(parsed)
    if not ok:
        return invalid(why or "the proof does not verify")
    if slot is not None:
        outputs = slot_outputs(parsed.instances, m, slot)
    return VerifyResult(
        valid=True,
        proof_path=proof_path,
        model_id=bundle.model_id,
        outputs=outputs,
        inputs=decode_inputs(parsed.instances, m)
        if slot is None
        else slot_inputs(parsed.instances, m, slot),
        input_hash=input_hash,
        output_hash=output_hash,
        srs_provenance=bundle.srs_provenance,
        warnings=warnings,
        timings=timer.timings,
        checked_by=checked_by,
        slot=slot,
    )


def _input_instances(instances: list[str], bundle: b.Bundle, slot: int | None) -> list[str]:
    """The input instances of the whole proof, or of one slot."""
    m = bundle.manifest
    if slot is None:
        return instance_part(instances, m, "input")
    return require_slots(m).input_instances(instances, slot)


def verify(
    proof_path: Path,
    bundle_dir: Path,
    *,
    input_path: Path | None = None,
    slot: int | None = None,
    bundle_digest: str | None = None,
    progress: Progress | None = None,
    checker: tuple[str, CheckerFactory] | None = None,
) -> VerifyResult:
    """Check ``proof_path`` against the bundle; with ``input_path``, also that it proves that input.

    With ``slot`` (a slot of a batch bundle), the result reports that slot's inputs and outputs,
    and ``input_path`` holds ONE slot's input that must be in that slot; a slot the bundle does
    not have is a :class:`~prover.errors.UsageError`. ``bundle_digest`` pins the whole bundle
    (see :func:`open_bundle`). ``checker`` replaces the local ezkl check with a named factory
    (the on-chain verifier of the chain layer).

    Returns a verdict for anything about the proof itself (malformed, another model, tampered).
    Raises :class:`~prover.errors.ArtifactError` when the bundle or proof file cannot be used at
    all (missing, digest mismatch), since then there is no verdict to give.
    """
    timer = StepTimer(progress)
    bundle = open_bundle(Path(bundle_dir), bundle_digest=bundle_digest, timer=timer)
    if slot is not None:
        require_slots(bundle.manifest).check_slot(slot)
    expected = None if input_path is None else ExpectedInput(bundle, Path(input_path), slot=slot)
    name, check = ("ezkl", None) if checker is None else (checker[0], checker[1](bundle))
    return verify_proof(
        bundle,
        Path(proof_path),
        expected_input=expected,
        timer=timer,
        check=check,
        checked_by=name,
        slot=slot,
    )


def verify_values(
    document: Any,
    bundle_dir: Path,
    *,
    values: InputValues | None = None,
    slot: int | None = None,
    bundle_digest: str | None = None,
    progress: Progress | None = None,
    checker: tuple[str, CheckerFactory] | None = None,
) -> VerifyResult:
    """Check a proof document (parsed JSON) against the bundle; with ``values``, also that it
    proves that input (given as for :func:`~prover.core.prove.prove_values`); with ``slot``,
    that ``values`` (ONE slot's input) is in that slot of a batch proof, as for :func:`verify`.

    The same checks and verdicts as :func:`verify`, without files: ``values`` is checked as an
    input file is (an :class:`~prover.errors.InputError` names ``input``) once the document has
    passed its structural checks. Raises :class:`~prover.errors.ArtifactError` when the bundle
    cannot be used.
    """
    timer = StepTimer(progress)
    bundle = open_bundle(Path(bundle_dir), bundle_digest=bundle_digest, timer=timer)
    if slot is not None:
        require_slots(bundle.manifest).check_slot(slot)
    expected = None if values is None else ExpectedInput(bundle, values=values, slot=slot)
    name, check = ("ezkl", None) if checker is None else (checker[0], checker[1](bundle))
    return verify_document(
        bundle,
        document,
        expected_input=expected,
        timer=timer,
        check=check,
        checked_by=name,
        slot=slot,
    )
