"""A synchronous proof check for clients (in a child process, never in the API process)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter

from prover.service.deps import ClientDep, SettingsDep, StoreDep, VerifierDep
from prover.service.models import check_input, model_manifest, ready_model
from prover.service.problems import ApiProblem
from prover.service.schemas import VerifyBody, VerifyOutcome
from prover.service.verifier import VerifierUnavailable

log = logging.getLogger("zkinfer.service")

router = APIRouter(prefix="/v1", tags=["verify"])


@router.post("/verify", operation_id="verifyProof")
async def verify_proof(
    body: VerifyBody,
    caller: ClientDep,
    store: StoreDep,
    settings: SettingsDep,
    verifier: VerifierDep,
) -> VerifyOutcome:
    """Is ``proof`` a valid proof for the model (and, with ``input``, about that input)?"""
    model = await ready_model(store, body.model_id)
    values = None if body.input is None else check_input(model_manifest(model), body.input)
    try:
        verdict = await verifier.verify(
            Path(model["bundle_dir"]),
            body.proof,
            bundle_digest=model["bundle_digest"],
            values=values,
            timeout_s=settings.verify_timeout_s,
        )
    except VerifierUnavailable as exc:
        log.warning("verifier unavailable for model %s: %s", body.model_id, exc)
        raise ApiProblem(
            503, "Verifier unavailable", "the verifier is unavailable; retry later"
        ) from None
    return VerifyOutcome(valid=verdict.valid, reason=verdict.reason, outputs=verdict.outputs)
