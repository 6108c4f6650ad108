"""A model as the service sees it: its bundle on disk, its input checks, its file listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prover.core.bundle import FILES, MANIFEST, load_bundle
from prover.core.hashing import sha256_file
from prover.core.inputs import parse_inputs, validate_inputs
from prover.core.manifest import Manifest
from prover.core.slots import check_slot_inputs
from prover.protocol import BundleFile, BundleListing
from prover.service.problems import ApiProblem
from prover.service.store import Row, Store

__all__ = [
    "check_input",
    "listing",
    "model_manifest",
    "ready_model",
    "register_bundle",
    "slot_count",
]


async def ready_model(store: Store, model_id: str) -> Row:
    """The model's record if it can serve requests; a clear problem otherwise."""
    model = await store.get_model(model_id)
    if model["status"] != "ready":
        detail = f"model {model_id!r} is {model['status']}"
        if model["reason"]:
            detail += f": {model['reason']}"
        raise ApiProblem(409, "Model not ready", detail)
    return model


def model_manifest(model: Row) -> Manifest:
    """The typed manifest of a model's record (stored from its checked bundle)."""
    return Manifest.from_json(model["manifest"], f"the manifest of model {model['id']}")


def slot_count(manifest: Manifest) -> int:
    """How many requests one proof of the model serves: its slots (compiled with ``--batch N``
    and a usable slot layout), else 1 (a request is the whole input, as for a batch-1 model)."""
    return 1 if manifest.slots is None else manifest.slots.count


def check_input(manifest: Manifest, doc: dict[str, Any]) -> list[list[float]]:
    """The CLI's input checks (format, shape, finiteness, calibrated range) on a JSON body: for
    a model with slots, ONE slot's input (its shapes with a leading dimension of 1)."""
    if slot_count(manifest) > 1:
        return check_slot_inputs(manifest, doc)
    shapes = [i.shape for i in manifest.inputs]
    values = parse_inputs(doc, "input", len(shapes))
    validate_inputs(values, shapes, manifest.input_ranges, "input")
    return values


async def register_bundle(store: Store, model_id: str, bundle_dir: Path) -> Row:
    """Record a compiled bundle as a ready model (its digests checked first)."""
    bundle = load_bundle(bundle_dir, check=FILES)
    return await store.put_model(
        model_id,
        status="ready",
        bundle_dir=str(bundle.root.resolve()),
        bundle_digest=bundle.digest,
        manifest=bundle.manifest.to_json(),
        slots=slot_count(bundle.manifest),
    )


def listing(model: Row, base_url: str) -> BundleListing:
    """What a prover downloads to prove ``model``: every bundle file and the manifest (whose
    canonical digest is the listing's ``bundle_digest``)."""
    root = Path(model["bundle_dir"])
    recorded: dict[str, str] = model["manifest"]["files"]
    files = [
        BundleFile(
            name=name,
            sha256=digest,
            size=(root / name).stat().st_size,
            url=f"{base_url}/v1/bundles/{model['id']}/files/{name}",
        )
        for name, digest in sorted({**recorded, MANIFEST: sha256_file(root / MANIFEST)}.items())
    ]
    return BundleListing(model_id=model["id"], bundle_digest=model["bundle_digest"], files=files)
