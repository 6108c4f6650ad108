"""A bundle's manifest as a typed, frozen value, read from ``manifest.json`` in one place.

:meth:`Manifest.from_json` checks the document's shape (every field present with its type, every
tensor well formed, no field this version does not know) and what it says about itself (the model
id covers the recorded digests and arguments); :func:`prover.core.manifest_check.check_manifest`
then checks the fields derived from the bundle's files. :meth:`Manifest.to_json` gives back
exactly the document read, so the bundle digest (the SHA-256 of the canonical manifest) and the
model id of an existing bundle never change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from prover.core.hashing import canonical_json, sha256_json
from prover.core.inputs import InputRange
from prover.core.manifest_parts import (
    Circuit,
    CompileArgs,
    Fidelity,
    InstanceLayout,
    InstancePart,
    OnnxRecord,
    PartName,
    ReferenceRecord,
    SrsRecord,
    Tensor,
    VerifierRecord,
    Visibility,
)
from prover.core.slot_layout import SlotLayout, compute_slots, read_slots
from prover.core.solidity import EIP170_LIMIT
from prover.errors import ArtifactError
from prover.version import BUNDLE_FORMAT

__all__ = [
    "Circuit",
    "CompileArgs",
    "Fidelity",
    "InstanceLayout",
    "InstancePart",
    "Manifest",
    "OnnxRecord",
    "PartName",
    "ReferenceRecord",
    "SlotRecord",
    "SrsRecord",
    "Tensor",
    "VerifierRecord",
    "Visibility",
    "model_id_for",
    "source_difference",
]


#: Checked first, in this order, so that a damaged manifest names its first missing field.
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

_NUMBER = (int, float)


def model_id_for(
    onnx_sha256: str, run_args: dict[str, Any], calibration_sha256: str, files: Mapping[str, str]
) -> str:
    """The content address of a compiled model: ONNX bytes, run arguments, calibration data and
    the digest of every bundle file (circuit, keys, SRS, verifier), so it names one circuit."""
    return sha256_json(
        {
            "onnx_sha256": onnx_sha256,
            "run_args": run_args,
            "calibration_sha256": calibration_sha256,
            "files": dict(files),
        }
    )


@dataclass(frozen=True, slots=True)
class SlotRecord:
    """The manifest's ``slots`` field as recorded by ``compile`` (``layout`` ``None``: recorded as
    having no slot layout). Bundles compiled before the field existed have no record."""

    layout: SlotLayout | None


@dataclass(frozen=True, slots=True)
class Manifest:
    """``manifest.json``: what a bundle holds, how it was compiled, and the digest of each file."""

    format: str
    created_at: str
    ezkl_version: str
    zkinfer_version: str
    model_id: str
    calibration_sha256: str
    run_args: CompileArgs
    visibility: Visibility
    batch_size: int
    variables: tuple[tuple[str, int], ...]
    onnx: OnnxRecord
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    circuit: Circuit
    instances: InstanceLayout
    proof_bytes: int
    srs: SrsRecord
    verifier: VerifierRecord
    sample_fidelity: Fidelity
    timings: Mapping[str, float]
    files: Mapping[str, str]
    sizes: Mapping[str, int]
    #: ``None`` for bundles compiled before slots were recorded; never trusted: see :attr:`slots`
    slot_record: SlotRecord | None = None
    #: the circuit was compiled from the slotted graph (:mod:`prover.core.slot_graph`): one
    #: hashed graph input per slot and input, so ``instances.input`` holds N hashes per input;
    #: ``circuit.input_scales`` and ``input_types`` still name one entry per (original) input
    slotted_inputs: bool = False

    @classmethod
    def from_json(cls, raw: Any, where: Path | str = "manifest.json") -> Manifest:
        """The manifest in ``raw`` (parsed JSON), checked in itself.

        Raises :class:`ArtifactError` naming the first field that is missing, mistyped, unknown
        or inconsistent with the model id.
        """
        if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
            raise ArtifactError(
                f"{where}: not a {BUNDLE_FORMAT} manifest; recompile with this zkinfer"
            )
        _check_schema(raw, where)
        _check_tensors(raw, where)
        manifest = _Reader(raw, where).manifest()
        known = manifest.to_json()
        if canonical_json(known) != canonical_json(raw):
            extra = _unknown(raw, known) or ["(a value that does not read back as written)"]
            raise ArtifactError(
                f"{where}: field {extra[0]} is not part of a {BUNDLE_FORMAT} manifest; "
                "recompile the bundle"
            )
        if manifest.model_id != model_id_for(
            manifest.onnx.sha256, raw["run_args"], manifest.calibration_sha256, manifest.files
        ):
            raise ArtifactError(
                f"{where}: model_id does not match the recorded digests and arguments (the model "
                "id covers the ONNX, the run arguments, the calibration data and every bundle file)"
            )
        if manifest.files.get("network.onnx") != manifest.onnx.sha256:
            raise ArtifactError(f"{where}: the ONNX digest is recorded inconsistently")
        if manifest.slotted_inputs and (
            manifest.batch_size == 1 or manifest.visibility.input != "hashed"
        ):
            raise ArtifactError(
                f"{where}: slotted_inputs is recorded for a bundle without hashed inputs in a "
                "batch; recompile the bundle"
            )
        return manifest

    def to_json(self) -> dict[str, Any]:
        """The document read by :meth:`from_json`, field for field (what the bundle digest and
        the service's ``GET /v1/models/{id}`` use)."""
        return {
            "format": self.format,
            "created_at": self.created_at,
            "ezkl_version": self.ezkl_version,
            "zkinfer_version": self.zkinfer_version,
            "run_args": self.run_args.to_json(),
            "visibility": self.visibility.to_json(),
            "batch_size": self.batch_size,
            "variables": [list(v) for v in self.variables],
            "onnx": self.onnx.to_json(),
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "circuit": self.circuit.to_json(),
            "instances": self.instances.to_json(),
            "proof_bytes": self.proof_bytes,
            "srs": self.srs.to_json(),
            "verifier": self.verifier.to_json(),
            "sample_fidelity": self.sample_fidelity.to_json(),
            "timings": dict(self.timings),
            "files": dict(self.files),
            "sizes": dict(self.sizes),
            "calibration_sha256": self.calibration_sha256,
            "model_id": self.model_id,
            **({} if self.slot_record is None else {"slots": self._slots_json()}),
            # absent unless true, so that the digest of every other bundle stays as it was
            **({"slotted_inputs": True} if self.slotted_inputs else {}),
        }

    def _slots_json(self) -> dict[str, Any] | None:
        layout = None if self.slot_record is None else self.slot_record.layout
        return None if layout is None else layout.to_json()

    @property
    def slots(self) -> SlotLayout | None:
        """Where each slot of the batch sits in the instances, computed from the shapes and the
        instance layout (a recorded ``slots`` must equal it: see
        :func:`~prover.core.manifest_check.check_manifest`); ``None`` when no slot can be
        checked on its own (hashed inputs with a batch above 1 in a bundle compiled without the
        slotted graph, a tensor without the batch as its leading dimension). A batch of 1 has one
        slot covering every instance."""
        return compute_slots(
            self.inputs,
            self.outputs,
            self.instances,
            self.batch_size,
            slotted_inputs=self.slotted_inputs,
        )

    @property
    def input_ranges(self) -> list[InputRange]:
        """The range each input accepts (:meth:`from_json` requires one per input)."""
        return [t.range for t in self.inputs if t.range is not None]

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical manifest: one value that pins every file of the bundle."""
        return sha256_json(self.to_json())


def source_difference(
    m: Manifest, onnx_sha256: str, run_args: dict[str, Any], calibration_sha256: str
) -> str | None:
    """What differs between the source a bundle was compiled from and the one given, in words;
    ``None`` when it is the same model, arguments and calibration data."""
    if m.onnx.sha256 != onnx_sha256:
        return f"another model (ONNX digest {m.onnx.sha256[:16]}...)"
    recorded = m.run_args.to_json()

    def word(args: dict[str, Any], k: str) -> str:  # a key left out is its default
        return repr(args[k]) if k in args else "the default"

    keys = [*run_args, *(k for k in recorded if k not in run_args)]
    changed = [
        f"{k} {word(recorded, k)} (asked now: {word(run_args, k)})"
        for k in keys
        if recorded.get(k) != run_args.get(k)
    ]
    if changed:
        return "this model compiled with other arguments: " + ", ".join(changed)
    if m.calibration_sha256 != calibration_sha256:
        return (
            "this model calibrated on other data (calibration digest "
            f"{m.calibration_sha256[:16]}..., asked now: {calibration_sha256[:16]}...)"
        )
    return None


def _get(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(dotted)
        node = node[key]
    return node


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    """``isinstance``, except that a JSON boolean is never a number."""
    return isinstance(value, kind) and (not isinstance(value, bool) or kind is bool)


def _check_schema(m: dict[str, Any], where: Path | str) -> None:
    for dotted, kind in _SCHEMA.items():
        try:
            value = _get(m, dotted)
        except KeyError:
            raise ArtifactError(
                f"{where}: field {dotted} is missing; recompile the bundle"
            ) from None
        if not _is(value, kind):
            raise ArtifactError(f"{where}: field {dotted} has the wrong type; recompile the bundle")


def _is_range(r: Any) -> bool:
    return isinstance(r, dict) and all(
        isinstance(r.get(k), list) and len(r[k]) == 2 and all(_is(v, _NUMBER) for v in r[k])
        for k in ("calibrated", "accepted")
    )


def _check_tensors(m: dict[str, Any], where: Path | str) -> None:
    """Every input has a name, an integer shape and a range; every output a name and a shape."""
    for kind in ("inputs", "outputs"):
        for i, t in enumerate(m[kind]):
            ok = (
                isinstance(t, dict)
                and isinstance(t.get("name"), str)
                and isinstance(t.get("shape"), list)
                and all(_is(d, int) for d in t["shape"])
                and (kind == "outputs" or _is_range(t.get("range")))
            )
            if not ok:
                raise ArtifactError(f"{where}: {kind}[{i}] is malformed; recompile the bundle")


def _tensor(doc: dict[str, Any], *, ranged: bool) -> Tensor:
    """An input (``ranged``; its range already checked) or an output (any range is unknown)."""
    r = doc["range"] if ranged else None
    # the numbers are kept as read (an int stays an int) so that the digest never changes
    rng = None if r is None else InputRange(*r["calibrated"], *r["accepted"])
    return Tensor(name=doc["name"], shape=tuple(doc["shape"]), range=rng)


def _unknown(raw: Any, known: Any, prefix: str = "") -> list[str]:
    """The dotted names of fields in ``raw`` that ``known`` (the typed read) lacks."""
    if isinstance(raw, dict) and isinstance(known, dict):
        return [
            name
            for key, value in raw.items()
            for name in (
                [f"{prefix}{key}"]
                if key not in known
                else _unknown(value, known[key], f"{prefix}{key}.")
            )
        ]
    if isinstance(raw, list) and isinstance(known, list):
        return [
            name
            for i, (r, k) in enumerate(zip(raw, known, strict=False))
            for name in _unknown(r, k, f"{prefix}{i}.")
        ]
    return []


class _Reader:
    """Typed reads of a manifest document; a missing or mistyped field names itself."""

    def __init__(self, raw: dict[str, Any], where: Path | str) -> None:
        self.raw, self.where = raw, where

    def __call__(
        self, dotted: str, kind: type | tuple[type, ...], *, nullable: bool = False
    ) -> Any:
        try:
            value = _get(self.raw, dotted)
        except KeyError:
            raise ArtifactError(
                f"{self.where}: field {dotted} is missing; recompile the bundle"
            ) from None
        if (value is None and nullable) or _is(value, kind):
            return value
        raise ArtifactError(
            f"{self.where}: field {dotted} has the wrong type; recompile the bundle"
        )

    def items(self, dotted: str, kind: type | tuple[type, ...]) -> tuple[Any, ...]:
        """A list whose items are all of ``kind``."""
        values = self(dotted, list)
        for i, v in enumerate(values):
            if not _is(v, kind):
                raise ArtifactError(
                    f"{self.where}: field {dotted}[{i}] has the wrong type; recompile the bundle"
                )
        return tuple(values)

    def table(self, dotted: str, kind: type | tuple[type, ...]) -> Mapping[str, Any]:
        """An object whose values are all of ``kind``, read-only."""
        values = self(dotted, dict)
        for key, v in values.items():
            if not _is(v, kind):
                raise ArtifactError(
                    f"{self.where}: field {dotted}.{key} has the wrong type; recompile the bundle"
                )
        return MappingProxyType(dict(values))

    def groups(self, dotted: str) -> tuple[tuple[float, ...], ...]:
        """A list of lists of numbers."""
        return tuple(
            self._numbers(group, f"{dotted}[{i}]") for i, group in enumerate(self(dotted, list))
        )

    def _numbers(self, group: Any, name: str) -> tuple[float, ...]:
        if isinstance(group, list) and all(_is(v, _NUMBER) for v in group):
            return tuple(group)
        raise ArtifactError(f"{self.where}: field {name} has the wrong type; recompile the bundle")

    def variables(self) -> tuple[tuple[str, int], ...]:
        """``[[name, size], ...]``: the symbolic dimensions fixed at compile time."""
        out = []
        for i, pair in enumerate(self("variables", list)):
            name, size = pair if isinstance(pair, list) and len(pair) == 2 else (None, None)
            if not (isinstance(name, str) and isinstance(size, int) and _is(size, int)):
                raise ArtifactError(
                    f"{self.where}: field variables[{i}] has the wrong type; recompile the bundle"
                )
            out.append((name, size))
        return tuple(out)

    def part(self, kind: str) -> InstancePart:
        """One part of the instance layout."""
        return InstancePart(
            visibility=self(f"instances.{kind}.visibility", str),
            offset=self(f"instances.{kind}.offset", int),
            count=self(f"instances.{kind}.count", int),
        )

    def manifest(self) -> Manifest:
        """Every field, typed."""
        r: Callable[..., Any] = self
        raw = self.raw
        return Manifest(
            format=r("format", str),
            created_at=r("created_at", str),
            ezkl_version=r("ezkl_version", str),
            zkinfer_version=r("zkinfer_version", str),
            model_id=r("model_id", str),
            calibration_sha256=r("calibration_sha256", str),
            run_args=CompileArgs(
                input_visibility=r("run_args.input_visibility", str),
                output_visibility=r("run_args.output_visibility", str),
                param_visibility=r("run_args.param_visibility", str),
                target=r("run_args.target", str),
                batch_size=r("run_args.batch_size", int),
                max_logrows=r("run_args.max_logrows", int, nullable=True),
                verifier_limit=(
                    r("run_args.verifier_limit", int)
                    if "verifier_limit" in raw["run_args"]
                    else EIP170_LIMIT
                ),
            ),
            visibility=Visibility(
                input=r("visibility.input", str),
                output=r("visibility.output", str),
                param=r("visibility.param", str),
            ),
            batch_size=r("batch_size", int),
            variables=self.variables(),
            onnx=OnnxRecord(
                sha256=r("onnx.sha256", str),
                opset=r("onnx.opset", int),
                ops=self.items("onnx.ops", str),
                onnxruntime=ReferenceRecord(
                    opset=r("onnx.onnxruntime.opset", int),
                    converted=r("onnx.onnxruntime.converted", bool),
                    scope=r("onnx.onnxruntime.scope", str),
                ),
            ),
            inputs=tuple(_tensor(t, ranged=True) for t in raw["inputs"]),
            outputs=tuple(_tensor(t, ranged=False) for t in raw["outputs"]),
            circuit=Circuit(
                logrows=r("circuit.logrows", int),
                input_scales=self.items("circuit.input_scales", int),
                output_scales=self.items("circuit.output_scales", int),
                input_types=self.items("circuit.input_types", str),
                num_rows=r("circuit.num_rows", int, nullable=True),
                check_mode=r("circuit.check_mode", str, nullable=True),
            ),
            instances=InstanceLayout(
                input=self.part("input"),
                output=self.part("output"),
                total=r("instances.total", int),
            ),
            proof_bytes=r("proof_bytes", int),
            srs=SrsRecord(
                sha256=r("srs.sha256", str),
                logrows=r("srs.logrows", int),
                provenance=r("srs.provenance", str),
                note=r("srs.note", str, nullable=True),
            ),
            verifier=VerifierRecord(
                contract=r("verifier.contract", str),
                runtime_size=r("verifier.runtime_size", int),
                compiler=r("verifier.compiler", str),
            ),
            sample_fidelity=Fidelity(
                onnxruntime=self.groups("sample_fidelity.onnxruntime"),
                circuit=self.groups("sample_fidelity.circuit"),
                max_abs_diff=r("sample_fidelity.max_abs_diff", _NUMBER),
            ),
            timings=self.table("timings", _NUMBER),
            files=self.table("files", str),
            sizes=self.table("sizes", int),
            slot_record=self.slot_record(),
            slotted_inputs="slotted_inputs" in raw and r("slotted_inputs", bool) is True,
        )

    def slot_record(self) -> SlotRecord | None:
        """The optional ``slots`` field (absent in bundles compiled before it)."""
        if "slots" not in self.raw:
            return None
        try:
            return SlotRecord(read_slots(self.raw["slots"]))
        except ValueError as exc:
            raise ArtifactError(
                f"{self.where}: field slots is malformed ({exc}); recompile the bundle"
            ) from None
