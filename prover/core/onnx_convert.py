"""Models from old exporters: bringing them to an opset ONNX Runtime implements, for the reference.

ezkl (through tract) compiles and proves models of old opsets, but ONNX Runtime has dropped the
kernels of opset 6 and below ("NOT_IMPLEMENTED ... BatchNormalization(6)"; also Mul, Add, PRelu).
ONNX Runtime is zkinfer's reference, not its gate, so the circuit is always built from the model
exactly as given (a proof is about the file that was compiled) and only the copy that ONNX Runtime
runs is converted, with onnx's version converter, to the oldest opset ONNX Runtime guarantees.
The fidelity check on the sample at compile then compares the circuit with that converted copy,
so a conversion that changed what the model computes is caught there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prover.errors import ModelError

__all__ = ["ORT_MIN_OPSET", "ReferencePlan", "default_opset", "reference_model", "reference_plan"]

#: The oldest default-domain opset ONNX Runtime guarantees to run (it warns below it, and its
#: opset-6 kernels of Add, Mul, PRelu and BatchNormalization are gone).
ORT_MIN_OPSET = 7


@dataclass(frozen=True)
class ReferencePlan:
    """What ONNX Runtime runs as the reference for a model of ``model_opset``."""

    model_opset: int
    reference_opset: int

    @property
    def converted(self) -> bool:
        """Whether ONNX Runtime runs a converted copy rather than the model as given."""
        return self.reference_opset != self.model_opset

    def to_json(self) -> dict[str, Any]:
        """The form recorded in the manifest (derived from the bundle's ``network.onnx``)."""
        return {
            "opset": self.reference_opset,
            "converted": self.converted,
            "scope": "onnxruntime reference only" if self.converted else "none",
        }


def default_opset(model: Any) -> int:
    """The model's default-domain (``ai.onnx``) opset version."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def reference_plan(model_opset: int) -> ReferencePlan:
    """The conversion ONNX Runtime needs for a model of ``model_opset``: none from opset 7 on."""
    return ReferencePlan(model_opset, max(model_opset, ORT_MIN_OPSET))


def reference_model(data: bytes) -> tuple[bytes, ReferencePlan]:
    """The model bytes ONNX Runtime should run for the model ``data``, and what was done.

    Raises :class:`ModelError` when the model needs converting and onnx's converter cannot.
    """
    from prover.core.onnx_wire import onnx_signature

    # reading the opset needs no onnx import: only an old model, to be converted, does
    plan = reference_plan(onnx_signature(data)["opset"])
    if not plan.converted:
        return data, plan
    import onnx
    from onnx import version_converter

    model = onnx.load_model_from_string(data)
    try:
        converted = version_converter.convert_version(model, plan.reference_opset)
        onnx.checker.check_model(converted)
    except Exception as exc:  # the converter raises bare RuntimeError / ValidationError
        first = (str(exc).strip().splitlines() or ["failed"])[0][:300]
        raise ModelError(
            f"the model is opset {plan.model_opset}, older than ONNX Runtime implements "
            f"({ORT_MIN_OPSET}), and onnx's version converter cannot bring it to opset "
            f"{plan.reference_opset}: {first}; export the model again at opset 13 or later"
        ) from None
    return converted.SerializeToString(), plan
