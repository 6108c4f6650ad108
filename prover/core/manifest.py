"""Cross-checks of a bundle manifest against the files it describes.

The manifest is not signed, so its own fields are trusted only where a digested file backs
them: scales, logrows, visibilities and the instance layout must agree with ``settings.json``,
the model id must be recomputable from the recorded digests and run arguments, and ``ceremony``
provenance must be backed by the SRS file's digest matching the published table. A manifest
that fails any of these is an artifact error, never a different verdict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from prover.core.jsonio import loads_bounded
from prover.errors import ArtifactError

__all__ = ["check_manifest", "model_id_for", "settings_visibility"]

_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "model_id": str,
    "calibration_sha256": str,
    "run_args": dict,
    "files": dict,
    "onnx.sha256": str,
    "circuit.logrows": int,
    "circuit.input_scales": list,
    "circuit.output_scales": list,
    "inputs": list,
    "outputs": list,
    "instances.input.visibility": str,
    "instances.input.offset": int,
    "instances.input.count": int,
    "instances.output.visibility": str,
    "instances.output.offset": int,
    "instances.output.count": int,
    "instances.total": int,
    "proof_bytes": int,
    "srs.sha256": str,
    "srs.logrows": int,
    "srs.provenance": str,
    "circuit.input_types": list,
}


def model_id_for(onnx_sha256: str, run_args: dict[str, Any], calibration_sha256: str) -> str:
    """The content address of a compiled model: ONNX bytes, run arguments, calibration data."""
    from prover.core.bundle import canonical_json, sha256_bytes

    material = {
        "onnx_sha256": onnx_sha256,
        "run_args": run_args,
        "calibration_sha256": calibration_sha256,
    }
    return sha256_bytes(canonical_json(material))


def settings_visibility(value: Any) -> str:
    """ezkl writes ``"Public"`` or ``{"Hashed": {...}}``; return ``public`` / ``hashed`` / ..."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value))).lower()
    return repr(value)


def _get(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(dotted)
        node = node[key]
    return node


def _check_schema(m: dict[str, Any], where: Path) -> None:
    for dotted, kind in _SCHEMA.items():
        try:
            value = _get(m, dotted)
        except KeyError:
            raise ArtifactError(
                f"{where}: field {dotted} is missing; recompile the bundle"
            ) from None
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ArtifactError(f"{where}: field {dotted} has the wrong type; recompile the bundle")


def _is_range(r: Any) -> bool:
    return isinstance(r, dict) and all(
        isinstance(r.get(k), list)
        and len(r[k]) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r[k])
        for k in ("calibrated", "accepted")
    )


def _check_tensors(m: dict[str, Any], where: Path) -> None:
    """Every input has a name, an integer shape and a range; every output a name and a shape."""
    for kind in ("inputs", "outputs"):
        for i, t in enumerate(m[kind]):
            ok = (
                isinstance(t, dict)
                and isinstance(t.get("name"), str)
                and isinstance(t.get("shape"), list)
                and all(isinstance(d, int) and not isinstance(d, bool) for d in t["shape"])
                and (kind == "outputs" or _is_range(t.get("range")))
            )
            if not ok:
                raise ArtifactError(f"{where}: {kind}[{i}] is malformed; recompile the bundle")


def _expected_layout(m: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The instance layout implied by settings.json (public tensors, one hash per hashed one)."""
    shapes = [list(s) for s in settings.get("model_instance_shapes", [])]
    parts: dict[str, Any] = {}
    offset = 0
    for part, tensors in (("input", m["inputs"]), ("output", m["outputs"])):
        vis = settings_visibility(settings["run_args"][f"{part}_visibility"])
        if vis == "public":
            mine, shapes = shapes[: len(tensors)], shapes[len(tensors) :]
            if mine != [t["shape"] for t in tensors]:
                raise ArtifactError(f"the {part} shapes disagree with settings.json")
            count = sum(math.prod(s) for s in mine)
        else:
            count = len(tensors)
        parts[part] = {"visibility": vis, "offset": offset, "count": count}
        offset += count
    parts["total"] = offset
    return parts


def _check_provenance(m: dict[str, Any], where: Path) -> None:
    """Provenance is derived, not declared: `ceremony` exactly when the digest is published."""
    from prover.core.srs import CEREMONY, DEV_UNSAFE, ceremony_digests

    srs = m["srs"]
    published = ceremony_digests().get(srs["logrows"])
    matches = m["files"].get("kzg.srs") == srs["sha256"] == published
    expected = CEREMONY if matches else DEV_UNSAFE
    if srs["provenance"] != expected:
        raise ArtifactError(
            f"{where}: records SRS provenance {srs['provenance']!r}, but kzg.srs makes it "
            f"{expected!r} (provenance follows the published ceremony digests only)"
        )


def _check_binding(run_args: dict[str, Any], where: Path) -> None:
    """Refuse circuits whose weights or instances are not bound (DESIGN invariant 2)."""
    param = settings_visibility(run_args.get("param_visibility"))
    if param != "fixed":
        raise ArtifactError(
            f"{where}: params are {param!r}, not 'fixed': the weights are not bound"
        )
    for part in ("input", "output"):
        value = run_args.get(f"{part}_visibility")
        vis = settings_visibility(value)
        public_hash = not isinstance(value, dict) or value.get("Hashed", {}).get("hash_is_public")
        if vis not in ("public", "hashed") or not public_hash:
            raise ArtifactError(
                f"{where}: {part}s are {vis!r}, neither public nor publicly hashed: a proof "
                "would not say what it was computed on"
            )


def check_manifest(
    m: dict[str, Any], where: Path, *, settings_path: Path | None, srs_checked: bool
) -> None:
    """Raise :class:`ArtifactError` unless the manifest is well formed and self-consistent.

    ``settings_path`` (already digest-checked) enables the cross-checks against the circuit
    settings; ``srs_checked`` means ``kzg.srs`` matched its recorded digest.
    """
    _check_schema(m, where)
    _check_tensors(m, where)
    if m["model_id"] != model_id_for(m["onnx"]["sha256"], m["run_args"], m["calibration_sha256"]):
        raise ArtifactError(f"{where}: model_id does not match the recorded digests and arguments")
    if m["files"].get("network.onnx") != m["onnx"]["sha256"]:
        raise ArtifactError(f"{where}: the ONNX digest is recorded inconsistently")
    if srs_checked:
        _check_provenance(m, where)
    if settings_path is None:
        return
    settings = loads_bounded(settings_path.read_text())
    run_args = settings["run_args"]
    _check_binding(run_args, where)
    circuit = m["circuit"]
    checks = {
        "input types": (circuit.get("input_types"), settings.get("input_types")),
        "logrows": (circuit["logrows"], run_args.get("logrows")),
        "input scales": (circuit["input_scales"], settings.get("model_input_scales")),
        "output scales": (circuit["output_scales"], settings.get("model_output_scales")),
        "param visibility": (
            m["run_args"].get("param_visibility"),
            settings_visibility(run_args.get("param_visibility")),
        ),
    }
    for what, (recorded, actual) in checks.items():
        if recorded != actual:
            raise ArtifactError(
                f"{where}: {what} {recorded!r} disagree with settings.json {actual!r}"
            )
    try:
        layout = _expected_layout(m, settings)
    except ArtifactError as exc:
        raise ArtifactError(f"{where}: {exc}") from None
    if layout != m["instances"]:
        raise ArtifactError(f"{where}: the instance layout disagrees with settings.json")
