"""The verifier process of the service: ``python -m prover.service.verify_child``.

Reads one :class:`~prover.service.verifier.VerifyRequest` per line on stdin and answers each with
one line on stdout: a :class:`~prover.service.verifier.Verdict`, or ``{"error": {"kind",
"message"}}`` when no verdict can be given (the bundle is missing or tampered, the input is not
one the bundle takes). It runs the core's values-first :func:`~prover.core.verify.verify_values`
with every check of ``zkinfer verify --input`` (for a batch proof: the whole batch's input, so
every request's slot and every padding slot is checked, in one verification; then each named
slot's outputs are decoded from the verified instances) and exits when stdin closes (its
service process ended). File descriptor 1 is moved aside first, so nothing ezkl or a library
prints can be taken for an answer.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from prover.service.verifier import Verdict, VerifyRequest


def answer(line: str) -> dict[str, Any]:
    """The answer to one request line."""
    from prover.core.verify import verify_values
    from prover.errors import ZkinferError

    try:
        request = VerifyRequest.from_json(json.loads(line))
        result = verify_values(
            request.proof,
            Path(request.bundle_dir),
            values=request.values,
            bundle_digest=request.bundle_digest,
        )
        per_slot = None
        if result.valid and request.slots is not None:
            per_slot = _slot_outputs(request)
    except (ZkinferError, ValueError, OSError) as exc:
        return {"error": {"kind": type(exc).__name__, "message": str(exc)[:2000]}}
    verdict = Verdict(result.valid, result.reason, result.outputs, result.timings, per_slot)
    return verdict.to_json()


def _slot_outputs(request: VerifyRequest) -> list[list[list[float]] | None]:
    """Each named slot's outputs, decoded from the instances of a proof already verified."""
    from prover.core.proofs import parse_proof
    from prover.core.slots import slot_outputs
    from prover.core.verify import open_bundle

    bundle = open_bundle(Path(request.bundle_dir), bundle_digest=request.bundle_digest)
    m = bundle.manifest
    parsed = parse_proof(
        request.proof, expected_instances=m.instances.total, expected_bytes=bundle.proof_bytes
    )
    return [slot_outputs(parsed.instances, m, slot) for slot in request.slots or []]


def main() -> None:
    """Serve requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service decides when to stop it
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray output goes to stderr, never between the answers
    import prover.core.verify  # noqa: F401 -- load ezkl before the first request arrives

    for line in sys.stdin:
        if line.strip():
            answers.write(json.dumps(answer(line)) + "\n")
            answers.flush()


if __name__ == "__main__":
    main()
