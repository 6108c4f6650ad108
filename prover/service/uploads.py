"""Staging an uploaded model: written to a private folder, checked, then moved into place, so a
refused upload leaves nothing behind."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from fastapi import UploadFile

from prover.errors import ZkinferError
from prover.service.compiler import check_upload

__all__ = ["stage_upload"]

_CHUNK = 1024 * 1024
_FIELDS = {"network.onnx": "onnx", "input.json": "sample", "calibration.json": "calibration"}


def _public(text: str, staging: Path) -> str:
    """``text`` with the staged files named by their form fields."""
    for name, field in _FIELDS.items():
        text = text.replace(str(staging / name), field)
    return text.replace(str(staging), "upload")


async def _save(upload: UploadFile, path: Path) -> None:
    with path.open("wb") as out:
        while chunk := await upload.read(_CHUNK):
            out.write(chunk)


async def stage_upload(
    root: Path,
    model_id: str,
    onnx: UploadFile,
    sample: UploadFile,
    calibration: UploadFile | None,
) -> Path:
    """``root/model_id`` holding ``network.onnx``, ``input.json`` (and ``calibration.json``)
    once :func:`~prover.service.compiler.check_upload` passed; raises its error otherwise."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=root))
    try:
        await _save(onnx, staging / "network.onnx")
        await _save(sample, staging / "input.json")
        if calibration is not None:
            await _save(calibration, staging / "calibration.json")
        try:
            await asyncio.to_thread(
                check_upload,
                staging / "network.onnx",
                staging / "input.json",
                staging / "calibration.json" if calibration is not None else None,
            )
        except ZkinferError as exc:  # name the form fields, not the server's folders
            hint = exc.hint_template and _public(exc.hint_template, staging)
            raise type(exc)(_public(exc.message, staging), field=exc.field, hint=hint) from None
        final = root / model_id
        staging.rename(final)
        return final
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
