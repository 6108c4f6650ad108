"""Content-addressed bundle downloads for provers (``Range`` honoured: proving keys are large)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from prover.protocol import BundleListing
from prover.service.deps import ProviderDep, SettingsDep, StoreDep, refuse_quarantined
from prover.service.models import listing, ready_model
from prover.service.problems import ApiProblem

router = APIRouter(prefix="/v1/bundles", tags=["bundles"])


@router.get("/{model_id}", operation_id="getBundle")
async def get_bundle(
    model_id: str, request: Request, caller: ProviderDep, store: StoreDep, settings: SettingsDep
) -> BundleListing:
    """Every file a prover needs for the model, with its SHA-256 and size."""
    await refuse_quarantined(store, settings, caller.id)
    model = await ready_model(store, model_id)
    return listing(model, str(request.base_url).rstrip("/"))


@router.get(
    "/{model_id}/files/{name}",
    operation_id="getBundleFile",
    response_class=FileResponse,
    responses={206: {"description": "the requested range"}},
)
async def get_bundle_file(
    model_id: str, name: str, caller: ProviderDep, store: StoreDep, settings: SettingsDep
) -> FileResponse:
    """One bundle file's bytes (``Range: bytes=N-`` resumes a download)."""
    await refuse_quarantined(store, settings, caller.id)
    model = await ready_model(store, model_id)
    names = {f.name for f in listing(model, "").files}
    if name not in names:  # only listed names: no path ever comes from the caller
        raise ApiProblem(404, "Not found", f"bundle {model_id!r} has no file {name!r}")
    return FileResponse(Path(model["bundle_dir"]) / name, media_type="application/octet-stream")
