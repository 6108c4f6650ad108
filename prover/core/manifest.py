"""Cross-checks of a bundle manifest against the files it describes.

The manifest is not signed, so each of its fields is either backed by a digested file or derived
from one, and checked against it whenever that file is read: scales, logrows, visibilities, the
instance layout and circuit figures against ``settings.json``; the proof length against the
generated verifier (which refuses any other length on chain); the SRS size and provenance against
``kzg.srs`` and the published digests; file sizes, verifier size and compiler against the files;
ONNX opset, operators and tensor names against ``network.onnx``. The model id is the digest of the
ONNX digest, run arguments, calibration digest and the digest of every bundle file, so a bundle
whose files were swapped consistently is another model. The few fields left are records for
people (timings, creation time, the sample's fidelity) or a guard of ``prove`` (calibrated input
ranges); none of them enters a verdict. A manifest that fails any check is an artifact error,
never a different verdict.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from prover.core.jsonio import loads_bounded
from prover.errors import ArtifactError

__all__ = [
    "check_manifest",
    "model_id_for",
    "settings_visibility",
    "source_difference",
    "verifier_proof_length",
]


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
    "sizes": dict,
    "verifier": dict,
    "visibility": dict,
    "variables": list,
    "onnx.opset": int,
    "onnx.ops": list,
}


def model_id_for(
    onnx_sha256: str, run_args: dict[str, Any], calibration_sha256: str, files: dict[str, str]
) -> str:
    """The content address of a compiled model: ONNX bytes, run arguments, calibration data and
    the digest of every bundle file (circuit, keys, SRS, verifier), so it names one circuit."""
    from prover.core.bundle import canonical_json, sha256_bytes

    material = {
        "onnx_sha256": onnx_sha256,
        "run_args": run_args,
        "calibration_sha256": calibration_sha256,
        "files": files,
    }
    return sha256_bytes(canonical_json(material))


def source_difference(
    m: dict[str, Any], onnx_sha256: str, run_args: dict[str, Any], calibration_sha256: str
) -> str | None:
    """What differs between the source a bundle was compiled from and the one given, in words;
    ``None`` when it is the same model, arguments and calibration data."""
    if m.get("onnx", {}).get("sha256") != onnx_sha256:
        return f"another model (ONNX digest {str(m.get('onnx', {}).get('sha256'))[:16]}...)"
    recorded = m.get("run_args", {})
    changed = [
        f"{k} {recorded.get(k)!r} (asked now: {v!r})"
        for k, v in run_args.items()
        if recorded.get(k) != v
    ]
    if changed:
        return "this model compiled with other arguments: " + ", ".join(changed)
    if m.get("calibration_sha256") != calibration_sha256:
        return (
            "this model calibrated on other data (calibration digest "
            f"{str(m.get('calibration_sha256'))[:16]}..., asked now: {calibration_sha256[:16]}...)"
        )
    return None


def verifier_proof_length(solidity: str) -> int | None:
    """The proof length the generated verifier accepts (it checks ``proof.length``)."""
    found = re.findall(r"eq\((0x[0-9a-fA-F]+),\s*proof\.length\)", solidity)
    return int(found[0], 16) if len(set(found)) == 1 else None


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


def _onnx_signature(data: bytes) -> dict[str, Any]:
    import onnx

    model = onnx.load_model_from_string(data)
    initializers = {t.name for t in model.graph.initializer}
    return {
        "opset": max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0
        ),
        "ops": sorted({n.op_type for n in model.graph.node}),
        "inputs": [v.name for v in model.graph.input if v.name not in initializers],
        "outputs": [v.name for v in model.graph.output],
    }


def _derived(
    m: dict[str, Any], root: Path, checked: tuple[str, ...], settings: dict[str, Any] | None
) -> dict[str, tuple[Any, Any, str]]:
    """Each derived field: (recorded, derived, the file it is derived from)."""
    from prover.core.onnx_convert import reference_plan
    from prover.core.srs import srs_logrows

    run_args = m["run_args"]
    out: dict[str, tuple[Any, Any, str]] = {
        "visibility": (
            m["visibility"],
            {k: run_args.get(f"{k}_visibility") for k in ("input", "output", "param")},
            "run_args",
        ),
        "batch_size": (m.get("batch_size"), run_args.get("batch_size"), "run_args"),
        "srs.sha256": (m["srs"]["sha256"], m["files"].get("kzg.srs"), "files"),
    }
    for name in checked:
        out[f"sizes.{name}"] = (m["sizes"].get(name), (root / name).stat().st_size, name)
    if "kzg.srs" in checked:
        out["srs.logrows"] = (m["srs"]["logrows"], srs_logrows(root / "kzg.srs"), "kzg.srs")
    if "Verifier.sol" in checked:
        length = verifier_proof_length((root / "Verifier.sol").read_text())
        out["proof_bytes"] = (m["proof_bytes"], length, "Verifier.sol")
    if "verifier.json" in checked:
        contract = loads_bounded((root / "verifier.json").read_text())
        if not isinstance(contract, dict):
            contract = {}
        for key in ("contract", "runtime_size", "compiler"):
            out[f"verifier.{key}"] = (m["verifier"].get(key), contract.get(key), "verifier.json")
    if "network.onnx" in checked:
        signature = _onnx_signature((root / "network.onnx").read_bytes())
        out["onnx.opset"] = (m["onnx"]["opset"], signature["opset"], "network.onnx")
        out["onnx.ops"] = (m["onnx"]["ops"], signature["ops"], "network.onnx")
        plan = reference_plan(signature["opset"]).to_json()
        out["onnx.onnxruntime"] = (m["onnx"].get("onnxruntime"), plan, "network.onnx")
        for kind in ("inputs", "outputs"):
            names = [t["name"] for t in m[kind]]
            out[f"{kind} names"] = (names, signature[kind], "network.onnx")
    if settings is not None:
        s_args = settings["run_args"]
        out["variables"] = (m["variables"], s_args.get("variables"), "settings.json")
        out["circuit.num_rows"] = (m["circuit"].get("num_rows"), settings.get("num_rows"), "")
        out["circuit.check_mode"] = (m["circuit"].get("check_mode"), s_args.get("check_mode"), "")
    return out


def check_manifest(m: dict[str, Any], where: Path, *, root: Path, checked: tuple[str, ...]) -> None:
    """Raise :class:`ArtifactError` unless the manifest is well formed and self-consistent.

    ``checked`` names the bundle files under ``root`` whose digests were just checked: the
    fields derived from them are compared with what they say.
    """
    _check_schema(m, where)
    _check_tensors(m, where)
    model_id = model_id_for(m["onnx"]["sha256"], m["run_args"], m["calibration_sha256"], m["files"])
    if m["model_id"] != model_id:
        raise ArtifactError(
            f"{where}: model_id does not match the recorded digests and arguments (the model "
            "id covers the ONNX, the run arguments, the calibration data and every bundle file)"
        )
    if m["files"].get("network.onnx") != m["onnx"]["sha256"]:
        raise ArtifactError(f"{where}: the ONNX digest is recorded inconsistently")
    if "kzg.srs" in checked:
        _check_provenance(m, where)
    settings = None
    if "settings.json" in checked:
        settings = loads_bounded((root / "settings.json").read_text())
    try:
        derived = _derived(m, root, checked, settings)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{where}: cannot derive the manifest's fields: {exc}") from None
    for what, (recorded, actual, source) in derived.items():
        if recorded != actual:
            raise ArtifactError(
                f"{where}: {what} {json.dumps(recorded)[:80]} disagrees with "
                f"{source or 'settings.json'} ({json.dumps(actual)[:80]}); recompile the bundle"
            )
    if settings is None:
        return
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
