"""ezkl witnesses and public instances: layout, decoded values, fidelity to ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prover.core.fields import felt_from_hex, felt_to_signed, signed_to_float
from prover.core.manifest import InstancePart, Manifest, PartName, Tensor

__all__ = [
    "check_against_onnxruntime",
    "compare_with_reference",
    "decode_inputs",
    "decode_outputs",
    "felts_to_floats",
    "fidelity_problem",
    "hashed_part",
    "instance_layout",
    "instance_part",
    "onnxruntime_reference",
]


def _count(groups: list[list[str]]) -> int:
    return sum(len(g) for g in groups)


def instance_layout(witness: dict[str, Any], input_vis: str, output_vis: str) -> dict[str, Any]:
    """Where the inputs (or their hash) and the outputs (or their hash) sit in the instances."""

    def part(kind: str, vis: str, offset: int) -> dict[str, Any]:
        if vis == "hashed":
            count = len((witness.get(f"processed_{kind}s") or {}).get("poseidon_hash", []))
        else:
            count = _count(witness[f"{kind}s"])
        return {"visibility": vis, "offset": offset, "count": count}

    inputs = part("input", input_vis, 0)
    outputs = part("output", output_vis, inputs["count"])
    return {"input": inputs, "output": outputs, "total": inputs["count"] + outputs["count"]}


def instance_part(instances: list[str], manifest: Manifest, kind: PartName) -> list[str]:
    """The instances of one part (``input`` or ``output``) per the bundle's layout."""
    return manifest.instances.part(kind).of(instances)


def hashed_part(instances: list[str], manifest: Manifest, kind: PartName) -> list[str] | None:
    """The Poseidon hash(es) of a hashed part, or ``None`` when that part is public."""
    part = manifest.instances.part(kind)
    return part.of(instances) if part.visibility == "hashed" else None


#: Largest accepted difference between circuit and ONNX Runtime, relative to the largest output.
FIDELITY_TOLERANCE = 0.05


def fidelity_problem(fidelity: dict[str, Any]) -> str | None:
    """Describe a circuit output too far from ONNX Runtime's, or ``None`` when within tolerance."""
    reference = [abs(v) for group in fidelity["onnxruntime"] for v in group]
    scale = max([*reference, 1e-9])
    relative = fidelity["max_abs_diff"] / scale
    if relative <= FIDELITY_TOLERANCE:
        return None
    return (
        f"the circuit's output differs from ONNX Runtime's by {fidelity['max_abs_diff']:.4g} "
        f"({relative:.0%} of the largest output, tolerance {FIDELITY_TOLERANCE:.0%})"
    )


def felts_to_floats(felts: list[str], scale: int) -> list[float]:
    """Decode ezkl field elements (hex, little-endian) to floats at a fixed-point scale."""
    return [signed_to_float(felt_to_signed(felt_from_hex(h)), scale) for h in felts]


def decode_part(
    instances: list[str],
    part: InstancePart,
    tensors: tuple[Tensor, ...],
    scales: tuple[int, ...],
) -> list[list[float]] | None:
    """One part of the instances (inputs or outputs) as floats, one flat list per tensor.

    ``None`` when that part is hashed: only its Poseidon hash is public.
    """
    if part.visibility != "public":
        return None
    felts = part.of(instances)
    result: list[list[float]] = []
    start = 0
    for tensor, scale in zip(tensors, scales, strict=True):
        result.append(felts_to_floats(felts[start : start + tensor.size], scale))
        start += tensor.size
    return result


def decode_outputs(instances: list[str], manifest: Manifest) -> list[list[float]] | None:
    """The proven outputs of a bundle's circuit, from verified instances."""
    return decode_part(
        instances, manifest.instances.output, manifest.outputs, manifest.circuit.output_scales
    )


def decode_inputs(instances: list[str], manifest: Manifest) -> list[list[float]] | None:
    """The proven (quantized) inputs of a bundle's circuit, from verified instances."""
    return decode_part(
        instances, manifest.instances.input, manifest.inputs, manifest.circuit.input_scales
    )


def onnxruntime_reference(
    onnx_path: Path,
    input_names: list[str],
    shapes: list[tuple[int, ...]],
    values: list[list[float]],
) -> list[list[float]]:
    """ONNX Runtime's outputs for the input, one flat list per output (what the witness is
    compared with by :func:`compare_with_reference`)."""
    import numpy as np  # only proving and compiling run the reference: verify needs neither

    from prover.core.onnx_model import run_onnxruntime

    # float64 holds every integer input exactly; run_onnxruntime casts to the declared types
    arrays = [
        np.asarray(v, dtype=np.float64).reshape(s) for v, s in zip(values, shapes, strict=True)
    ]
    reference = run_onnxruntime(onnx_path, arrays, input_names)
    return [r.reshape(-1).tolist() for r in reference]


def compare_with_reference(
    reference: list[list[float]], witness: dict[str, Any], output_scales: tuple[int, ...]
) -> dict[str, Any]:
    """The witness outputs decoded at ``output_scales`` beside ONNX Runtime's ``reference``, and
    the largest difference."""
    circuit = [
        felts_to_floats(group, scale)
        for group, scale in zip(witness["outputs"], output_scales, strict=True)
    ]
    diffs = [
        abs(a - c)
        for r, w in zip(reference, circuit, strict=True)
        for a, c in zip(r, w, strict=True)
    ]
    return {
        "onnxruntime": reference,
        "circuit": circuit,
        "max_abs_diff": max(diffs) if diffs else 0.0,
    }


def check_against_onnxruntime(
    onnx_path: Path,
    input_names: list[str],
    shapes: list[tuple[int, ...]],
    values: list[list[float]],
    witness: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Run the same input through ONNX Runtime and compare with the witness outputs."""
    reference = onnxruntime_reference(onnx_path, input_names, shapes, values)
    return compare_with_reference(reference, witness, tuple(settings["model_output_scales"]))
