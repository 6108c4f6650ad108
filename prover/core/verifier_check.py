"""Is the bundle's Solidity verifier the one for its keys and SRS?

A verifier contract embeds the verifying key and the SRS's G2 points. A bundle recorded as
``ceremony`` could otherwise carry a verifier rendered from other keys or a development SRS, which
the digests cannot tell (they were recorded by whoever made the bundle). ezkl renders the verifier
deterministically from ``vk.key``, ``settings.json`` and ``kzg.srs`` (about 0.2 s), and solc-js
compiles it deterministically (about 1.5 s), so both are redone and compared byte for byte.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from prover.core import bundle as b
from prover.core import ezkl_backend
from prover.core.solidity import compile_solidity
from prover.errors import ArtifactError

__all__ = ["check_verifier_matches_keys"]


def check_verifier_matches_keys(bundle: b.Bundle, *, bytecode: bool = True) -> None:
    """Raise :class:`ArtifactError` unless ``Verifier.sol`` is what ezkl renders from the bundle's
    ``vk.key``, ``settings.json`` and ``kzg.srs`` and, with ``bytecode``, unless ``verifier.json``
    holds solc-js's compilation of it (the bytecode that ``deploy`` sends)."""
    names = (b.VK, b.SETTINGS, b.SRS, b.SOLIDITY, *((b.VERIFIER_JSON,) if bytecode else ()))
    bundle.check(names)
    with tempfile.TemporaryDirectory(prefix="zkinfer-verifier-") as tmp:
        rendered = Path(tmp) / b.SOLIDITY
        ezkl_backend.render_evm_verifier(
            bundle.path(b.VK), bundle.path(b.SETTINGS), rendered, bundle.path(b.SRS)
        )
        if rendered.read_bytes() != bundle.path(b.SOLIDITY).read_bytes():
            raise ArtifactError(
                f"{bundle.path(b.SOLIDITY)}: not the verifier of this bundle's keys: ezkl renders "
                "another contract from vk.key, settings.json and kzg.srs (a verifier made with "
                "other keys or another SRS); recompile the bundle"
            )
        if not bytecode:
            return
        contract = compile_solidity(rendered, "Halo2Verifier")
    recorded = json.loads(bundle.path(b.VERIFIER_JSON).read_text())
    expected = contract.to_json()
    for key in ("bytecode", "deployed_bytecode", "abi"):
        if not isinstance(recorded, dict) or recorded.get(key) != expected[key]:
            raise ArtifactError(
                f"{bundle.path(b.VERIFIER_JSON)}: its {key} is not solc-js's compilation of "
                "Verifier.sol; recompile the bundle"
            )
