"""Cross-checks of a bundle's manifest against the files it describes.

The manifest is not signed, so each of its fields is either backed by a digested file or derived
from one, and checked against it whenever that file is read: scales, logrows, visibilities, the
instance layout and circuit figures against ``settings.json``; the proof length against the
generated verifier (which refuses any other length on chain); the SRS size and provenance against
``kzg.srs`` and the published digests; file sizes, verifier size and compiler against the files;
ONNX opset, operators, tensor names and shapes against ``network.onnx``. The model id is the digest
of the ONNX digest, run arguments, calibration digest and the digest of every bundle file, so a
bundle whose files were swapped consistently is another model. A bundle compiled from the slotted
graph (``slotted_inputs``) has N graph inputs per input in settings.json, which the checks expect.
The few fields left are records for people (timings, creation time, the sample's fidelity) or a
guard of ``prove`` (calibrated input ranges); none of them enters a verdict. A manifest that fails
any check is an artifact error, never a different verdict.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from prover.core.jsonio import loads_bounded
from prover.core.manifest import Manifest
from prover.core.onnx_wire import onnx_signature
from prover.errors import ArtifactError

__all__ = ["check_manifest", "settings_visibility", "verifier_proof_length"]


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


def _expected_layout(m: Manifest, settings: dict[str, Any]) -> dict[str, Any]:
    """The instance layout implied by settings.json (public tensors, one hash per hashed one)."""
    shapes = [list(s) for s in settings.get("model_instance_shapes", [])]
    parts: dict[str, Any] = {}
    offset = 0
    for part, tensors in (("input", m.inputs), ("output", m.outputs)):
        vis = settings_visibility(settings["run_args"][f"{part}_visibility"])
        if vis == "public":
            mine, shapes = shapes[: len(tensors)], shapes[len(tensors) :]
            if mine != [list(t.shape) for t in tensors]:
                raise ArtifactError(f"the {part} shapes disagree with settings.json")
            count = sum(math.prod(s) for s in mine)
        else:  # one hash per tensor; per tensor and slot for the slotted graph
            count = len(tensors) * (m.batch_size if m.slotted_inputs and part == "input" else 1)
        parts[part] = {"visibility": vis, "offset": offset, "count": count}
        offset += count
    parts["total"] = offset
    return parts


def _check_provenance(m: Manifest, where: Path) -> None:
    """Provenance is derived, not declared: `ceremony` exactly when the digest is published."""
    from prover.core.srs import CEREMONY, DEV_UNSAFE, ceremony_digests

    srs = m.srs
    published = ceremony_digests().get(srs.logrows)
    matches = m.files.get("kzg.srs") == srs.sha256 == published
    expected = CEREMONY if matches else DEV_UNSAFE
    if srs.provenance != expected:
        raise ArtifactError(
            f"{where}: records SRS provenance {srs.provenance!r}, but kzg.srs makes it "
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


def _resolved(dims: list[tuple[int | str, ...]], variables: dict[str, int]) -> list[list[int]]:
    """Shapes with the symbolic dimensions fixed as compile fixed them, as
    :meth:`~prover.core.onnx_model.TensorSpec.resolved` does (unknown names become 1); not
    imported from there, which would load numpy into every verify."""
    return [[d if isinstance(d, int) else variables.get(d, 1) for d in shape] for shape in dims]


def _derived(
    m: Manifest, root: Path, checked: tuple[str, ...], settings: dict[str, Any] | None
) -> dict[str, tuple[Any, Any, str]]:
    """Each derived field: (recorded, derived, the file it is derived from)."""
    from prover.core.onnx_convert import reference_plan
    from prover.core.srs import srs_logrows

    run_args = m.run_args.to_json()
    out: dict[str, tuple[Any, Any, str]] = {
        "visibility": (
            m.visibility.to_json(),
            {k: run_args[f"{k}_visibility"] for k in ("input", "output", "param")},
            "run_args",
        ),
        "batch_size": (m.batch_size, m.run_args.batch_size, "run_args"),
        "srs.sha256": (m.srs.sha256, m.files.get("kzg.srs"), "files"),
    }
    for name in checked:
        out[f"sizes.{name}"] = (m.sizes.get(name), (root / name).stat().st_size, name)
    if "kzg.srs" in checked:
        out["srs.logrows"] = (m.srs.logrows, srs_logrows(root / "kzg.srs"), "kzg.srs")
    if "Verifier.sol" in checked:
        length = verifier_proof_length((root / "Verifier.sol").read_text())
        out["proof_bytes"] = (m.proof_bytes, length, "Verifier.sol")
    if "verifier.json" in checked:
        contract = loads_bounded((root / "verifier.json").read_text())
        if not isinstance(contract, dict):
            contract = {}
        for key, recorded in m.verifier.to_json().items():
            out[f"verifier.{key}"] = (recorded, contract.get(key), "verifier.json")
    if "network.onnx" in checked:
        signature = onnx_signature((root / "network.onnx").read_bytes())
        out["onnx.opset"] = (m.onnx.opset, signature["opset"], "network.onnx")
        out["onnx.ops"] = (list(m.onnx.ops), signature["ops"], "network.onnx")
        plan = reference_plan(signature["opset"]).to_json()
        out["onnx.onnxruntime"] = (m.onnx.onnxruntime.to_json(), plan, "network.onnx")
        fixed = dict(m.variables)
        for kind, tensors in (("inputs", m.inputs), ("outputs", m.outputs)):
            names = [t.name for t in tensors]
            out[f"{kind} names"] = (names, signature[kind], "network.onnx")
            # hashed tensors have no shapes in settings.json: the ONNX and variables fix them
            shapes = _resolved(signature[f"{kind[:-1]} dims"], fixed)
            out[f"{kind} shapes"] = ([list(t.shape) for t in tensors], shapes, "network.onnx")
    if settings is not None:
        s_args = settings["run_args"]
        variables = [list(v) for v in m.variables]
        out["variables"] = (variables, s_args.get("variables"), "settings.json")
        out["circuit.num_rows"] = (m.circuit.num_rows, settings.get("num_rows"), "")
        out["circuit.check_mode"] = (m.circuit.check_mode, s_args.get("check_mode"), "")
    return out


def _check_slots(m: Manifest, where: Path) -> None:
    """A recorded slot layout must be the one the shapes and instance layout imply (the record
    is for readers of the file: :attr:`Manifest.slots` always computes it)."""
    if m.slot_record is None:
        return
    if m.slot_record.layout != m.slots:
        computed = None if m.slots is None else m.slots.to_json()
        raise ArtifactError(
            f"{where}: slots {json.dumps(m.to_json()['slots'])[:80]} disagree with the shapes and "
            f"the instance layout ({json.dumps(computed)[:80]}); recompile the bundle"
        )


def check_manifest(m: Manifest, where: Path, *, root: Path, checked: tuple[str, ...]) -> None:
    """Raise :class:`ArtifactError` unless the manifest (already checked in itself by
    :meth:`Manifest.from_json`) agrees with the bundle's files.

    ``checked`` names the bundle files under ``root`` whose digests were just checked: the
    fields derived from them are compared with what they say.
    """
    if "kzg.srs" in checked:
        _check_provenance(m, where)
    _check_slots(m, where)
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
    circuit = m.circuit
    # the slotted graph has N copies of each input, slot-major; the manifest names each once
    copies = m.batch_size if m.slotted_inputs else 1
    checks = {
        "input types": (list(circuit.input_types) * copies, settings.get("input_types")),
        "logrows": (circuit.logrows, run_args.get("logrows")),
        "input scales": (list(circuit.input_scales) * copies, settings.get("model_input_scales")),
        "output scales": (list(circuit.output_scales), settings.get("model_output_scales")),
        "param visibility": (
            m.run_args.param_visibility,
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
    if layout != m.instances.to_json():
        raise ArtifactError(f"{where}: the instance layout disagrees with settings.json")
