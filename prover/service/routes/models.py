"""Models: the compiled bundles the service proves for."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile

from prover.service.compiler import CompileJob
from prover.service.deps import ClientDep, QueueDep, SettingsDep, StoreDep
from prover.service.schemas import ModelAccepted, ModelList, ModelView
from prover.service.uploads import stage_upload
from prover.service.views import deployments, model_view

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", operation_id="listModels")
async def list_models(caller: ClientDep, store: StoreDep, settings: SettingsDep) -> ModelList:
    """Every model: ``compiling``, ``ready`` or ``failed`` (with the reason), and where it is
    deployed on the service's chain."""
    chain = deployments(settings)
    return ModelList(items=[model_view(r, chain) for r in await store.list_models()])


@router.get("/{model_id}", operation_id="getModel")
async def get_model(
    model_id: str, caller: ClientDep, store: StoreDep, settings: SettingsDep
) -> ModelView:
    """One model: status, manifest, bundle digest and its verifier and market addresses."""
    return model_view(await store.get_model(model_id), deployments(settings))


@router.post("", status_code=202, operation_id="uploadModel")
async def upload_model(
    caller: ClientDep,
    store: StoreDep,
    queue: QueueDep,
    settings: SettingsDep,
    response: Response,
    onnx: Annotated[UploadFile, File(description="the ONNX model (one self-contained file)")],
    sample: Annotated[UploadFile, File(description="a sample input (ezkl JSON format)")],
    calibration: Annotated[UploadFile | None, File(description="calibration inputs")] = None,
    input_visibility: Annotated[Literal["public", "hashed"], Form()] = "public",
    output_visibility: Annotated[Literal["public", "hashed"], Form()] = "public",
) -> ModelAccepted:
    """Upload a model; it is checked now and compiled in the background (status compiling)."""
    model_id = "m_" + uuid.uuid4().hex[:20]
    folder = await stage_upload(
        settings.service_dir / "uploads", model_id, onnx, sample, calibration
    )
    job = CompileJob(
        onnx=folder / "network.onnx",
        sample=folder / "input.json",
        calibration=folder / "calibration.json" if calibration is not None else None,
        out=settings.service_dir / "bundles" / model_id,
        input_visibility=input_visibility,
        output_visibility=output_visibility,
        dev_srs=settings.dev_srs,
    )
    row = await store.put_model(model_id, status="compiling", owner=caller.id)
    await queue.compile(model_id, job)
    response.headers["Location"] = f"/v1/models/{model_id}"
    return ModelAccepted(id=row["id"], status=row["status"])
