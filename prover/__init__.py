"""zkinfer: zero-knowledge proofs of ML inference with ezkl, checkable locally and on chain.

The typed Python API mirrors the CLI::

    from prover import compile_model, prove, prove_values, verify, verify_values
    compiled = compile_model(Path("network.onnx"), Path("input.json"), Path("bundle"), ...)
    proved = prove(Path("bundle"), Path("input.json"), Path("proof.json"))
    verdict = verify(Path("proof.json"), Path("bundle"))
    # values first (a request's JSON body, say): the proof document stays in memory
    doc = json.loads(Path("input.json").read_text())
    proven = prove_values(Path("bundle"), doc)
    verdict = verify_values(proven.document, Path("bundle"), values=doc)
    # a bundle compiled with batch N: up to N inputs, one proof; each client checks its slot
    batch = prove_batch(Path("batch-bundle"), [doc_a, doc_b])  # slots 2.. are padding
    verdict = verify_values(batch.document, Path("batch-bundle"), values=doc_b, slot=1)

Every deliberate failure is a :class:`ZkinferError`. Heavy modules load on first use, so
``import prover`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from prover.errors import (
    ArtifactError,
    CircuitError,
    InputError,
    ModelError,
    ProofInvalid,
    SrsError,
    ToolchainError,
    UsageError,
    ZkinferError,
)
from prover.version import __version__

__all__ = [
    "ArtifactError",
    "CircuitError",
    "CompileOptions",
    "CompileResult",
    "InputError",
    "ModelError",
    "ProofInvalid",
    "ProveResult",
    "Proven",
    "ProvenBatch",
    "SlotLayout",
    "SrsError",
    "ToolchainError",
    "UsageError",
    "VerifyResult",
    "ZkinferError",
    "__version__",
    "batch_values",
    "check_slot_inputs",
    "compile_model",
    "padding_values",
    "prove",
    "prove_batch",
    "prove_values",
    "slot_input_shapes",
    "slot_outputs",
    "verify",
    "verify_values",
]

_LAZY = {
    "CompileOptions": "prover.core.compile",
    "CompileResult": "prover.core.compile",
    "compile_model": "prover.core.compile",
    "ProveResult": "prover.core.prove",
    "prove": "prover.core.prove",
    "Proven": "prover.core.prove",
    "prove_values": "prover.core.prove",
    "ProvenBatch": "prover.core.batch",
    "prove_batch": "prover.core.batch",
    "SlotLayout": "prover.core.slots",
    "batch_values": "prover.core.slots",
    "check_slot_inputs": "prover.core.slots",
    "padding_values": "prover.core.slots",
    "slot_input_shapes": "prover.core.slots",
    "slot_outputs": "prover.core.slots",
    "VerifyResult": "prover.core.verify",
    "verify": "prover.core.verify",
    "verify_values": "prover.core.verify",
}

if TYPE_CHECKING:
    from prover.core.batch import ProvenBatch, prove_batch
    from prover.core.compile import CompileOptions, CompileResult, compile_model
    from prover.core.prove import Proven, ProveResult, prove, prove_values
    from prover.core.slots import (
        SlotLayout,
        batch_values,
        check_slot_inputs,
        padding_values,
        slot_input_shapes,
        slot_outputs,
    )
    from prover.core.verify import VerifyResult, verify, verify_values


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prover' has no attribute {name!r}")
