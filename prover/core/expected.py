"""What a proof's input instances must be for a given input: quantized values or their hash."""

from __future__ import annotations

from prover.core import bundle as b
from prover.core import ezkl_backend

__all__ = ["expected_input_instances"]


def expected_input_instances(bundle: b.Bundle, values: list[list[float]]) -> list[str]:
    """The input part of the instances that a proof over ``values`` must carry (hex felts)."""
    m = bundle.manifest
    scales: list[int] = m["circuit"]["input_scales"]
    types: list[str] = m["circuit"].get("input_types") or ["F32"] * len(scales)
    felts = [
        ezkl_backend.float_to_felts(v, s, t) for v, s, t in zip(values, scales, types, strict=True)
    ]
    if m["instances"]["input"]["visibility"] == "public":
        return [f for group in felts for f in group]
    # ezkl hashes each model input separately with its Poseidon chip
    return [h for group in felts for h in ezkl_backend.poseidon_hash(group)]
