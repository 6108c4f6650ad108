"""``verify``: the verdict on a proof for a bundle. Fails closed: anything unexpected is invalid."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from prover.core import bundle as b
from prover.core import ezkl_backend
from prover.core.expected import (
    InputValues,
    check_bundle_inputs,
    expected_input_instances,
    load_bundle_inputs,
)
from prover.core.progress import Progress, StepTimer
from prover.core.proofs import (
    MalformedProof,
    ParsedProof,
    claims_problem,
    parse_proof,
    read_proof_file,
)
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


class ExpectedInput:
    """The input a proof must be about: loaded and checked against the bundle on first use only.

    Loading lazily keeps the order of checks of :func:`verify` (a malformed proof is invalid
    before the input is read); :func:`instances` can be called early to fail fast instead.
    """

    def __init__(
        self, bundle: b.Bundle, path: Path | None = None, *, values: InputValues | None = None
    ) -> None:
        """The input in the file at ``path``, or given as ``values`` (one of the two)."""
        self.bundle = bundle
        self.path = None if path is None else Path(path)
        self._instances: list[str] | None = None
        self._load: Callable[[], list[list[float]]]
        if self.path is not None and values is None:
            self._load = partial(load_bundle_inputs, bundle, self.path, allow_out_of_range=True)
        elif self.path is None and values is not None:
            self._load = partial(check_bundle_inputs, bundle, values, allow_out_of_range=True)
        else:
            raise TypeError("ExpectedInput takes the input's path or its values, not both")

    @property
    def described(self) -> str:
        """How a verdict names this input."""
        return "the input given" if self.path is None else f"the input in {self.path}"

    def instances(self) -> list[str]:
        """The input instances a proof over this input carries; raises ``InputError`` if bad."""
        if self._instances is None:
            self._instances = expected_input_instances(self.bundle, self._load())
        return self._instances


def _invalid(
    bundle: b.Bundle, proof_path: Path | None, reason: str, timer: StepTimer, checked_by: str
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
    )


def verify_proof(
    bundle: b.Bundle,
    proof_path: Path,
    *,
    expected_input: ExpectedInput | None = None,
    timer: StepTimer | None = None,
    check: ProofCheck | None = None,
    checked_by: str = "ezkl",
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
        return _invalid(bundle, proof_path, f"malformed proof: {exc}", timer, checked_by)
    return verify_document(
        bundle,
        document,
        expected_input=expected_input,
        timer=timer,
        check=check,
        checked_by=checked_by,
        proof_path=proof_path,
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
) -> VerifyResult:
    """The verdict on a parsed proof document for a bundle already opened with :func:`open_bundle`.

    ``check`` (default: ezkl in-process) decides on the cryptography once the proof's structure,
    claims and input have passed; ``checked_by`` names it in the result, ``proof_path`` (if the
    document came from a file) too.

    Returns a verdict for anything about the proof itself (malformed, another model, tampered,
    another input). Raises :class:`~prover.errors.InputError` when ``expected_input`` is not a
    usable input for the bundle.
    """
    timer = timer or StepTimer()
    m = bundle.manifest
    warnings = bundle_warnings(bundle)

    def invalid(reason: str) -> VerifyResult:
        return _invalid(bundle, proof_path, reason, timer, checked_by)

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
        instance_part(parsed.instances, m, "input") != expected_input.instances()
    ):
        return invalid(f"the proof is not about {expected_input.described}")

    with timer.step("verify", checked_by):
        ok, why = (check or ezkl_check(bundle))(parsed)
    if not ok:
        return invalid(why or "the proof does not verify")
    return VerifyResult(
        valid=True,
        proof_path=proof_path,
        model_id=bundle.model_id,
        outputs=outputs,
        inputs=decode_inputs(parsed.instances, m),
        input_hash=input_hash,
        output_hash=output_hash,
        srs_provenance=bundle.srs_provenance,
        warnings=warnings,
        timings=timer.timings,
        checked_by=checked_by,
    )


def verify(
    proof_path: Path,
    bundle_dir: Path,
    *,
    input_path: Path | None = None,
    bundle_digest: str | None = None,
    progress: Progress | None = None,
    checker: tuple[str, CheckerFactory] | None = None,
) -> VerifyResult:
    """Check ``proof_path`` against the bundle; with ``input_path``, also that it proves that input.

    ``bundle_digest`` pins the whole bundle (see :func:`open_bundle`). ``checker`` replaces the
    local ezkl check with a named factory (the on-chain verifier of the chain layer).

    Returns a verdict for anything about the proof itself (malformed, another model, tampered).
    Raises :class:`~prover.errors.ArtifactError` when the bundle or proof file cannot be used at
    all (missing, digest mismatch), since then there is no verdict to give.
    """
    timer = StepTimer(progress)
    bundle = open_bundle(Path(bundle_dir), bundle_digest=bundle_digest, timer=timer)
    expected = None if input_path is None else ExpectedInput(bundle, Path(input_path))
    name, check = ("ezkl", None) if checker is None else (checker[0], checker[1](bundle))
    return verify_proof(
        bundle, Path(proof_path), expected_input=expected, timer=timer, check=check, checked_by=name
    )


def verify_values(
    document: Any,
    bundle_dir: Path,
    *,
    values: InputValues | None = None,
    bundle_digest: str | None = None,
    progress: Progress | None = None,
    checker: tuple[str, CheckerFactory] | None = None,
) -> VerifyResult:
    """Check a proof document (parsed JSON) against the bundle; with ``values``, also that it
    proves that input (given as for :func:`~prover.core.prove.prove_values`).

    The same checks and verdicts as :func:`verify`, without files: ``values`` is checked as an
    input file is (an :class:`~prover.errors.InputError` names ``input``) once the document has
    passed its structural checks. Raises :class:`~prover.errors.ArtifactError` when the bundle
    cannot be used.
    """
    timer = StepTimer(progress)
    bundle = open_bundle(Path(bundle_dir), bundle_digest=bundle_digest, timer=timer)
    expected = None if values is None else ExpectedInput(bundle, values=values)
    name, check = ("ezkl", None) if checker is None else (checker[0], checker[1](bundle))
    return verify_document(
        bundle, document, expected_input=expected, timer=timer, check=check, checked_by=name
    )
