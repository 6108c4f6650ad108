"""Compiled contracts the chain layer deploys and calls: the market, the example consumer, and a
bundle's generated verifier.

The market's ABI and bytecode ship inside the package (``prover/chain/artifacts/``), built from
``verifier_contracts/src`` by ``scripts/export_contract_artifacts.py``; ``make test`` checks that
the committed artifacts match a fresh build, so they cannot drift from the source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from prover.core.jsonio import loads_bounded
from prover.errors import ArtifactError

__all__ = ["Artifact", "error_selectors", "load_artifact", "verifier_artifact"]


@dataclass(frozen=True)
class Artifact:
    """A contract's ABI and creation/runtime bytecode."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str

    @property
    def runtime_code_hash(self) -> bytes:
        """keccak256 of the runtime code: what ``extcodehash`` returns for a deployment."""
        return keccak(bytes.fromhex(self.deployed_bytecode.removeprefix("0x")))


@cache
def load_artifact(name: str) -> Artifact:
    """A contract shipped with the package (``InferenceMarket``, ``ScreeningConsumer``)."""
    try:
        text = resources.files("prover.chain").joinpath("artifacts", f"{name}.json").read_text()
    except FileNotFoundError:
        raise ArtifactError(
            f"the package has no compiled {name} contract; reinstall zkinfer or run "
            "scripts/export_contract_artifacts.py in a checkout"
        ) from None
    doc = json.loads(text)
    return Artifact(name, doc["abi"], doc["bytecode"], doc["deployedBytecode"])


def verifier_artifact(path: Path) -> Artifact:
    """A bundle's verifier from its ``verifier.json`` (ABI and bytecode made by compile)."""
    try:
        doc = loads_bounded(Path(path).read_bytes())
        return Artifact(
            str(doc.get("contract", "Halo2Verifier")),
            doc["abi"],
            _hex(doc["bytecode"]),
            _hex(doc["deployed_bytecode"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"{path}: not a compiled verifier ({exc}); recompile the bundle"
        ) from None


def _hex(text: str) -> str:
    return text if text.startswith("0x") else "0x" + text


def error_selectors(abi: list[dict[str, Any]]) -> dict[bytes, str]:
    """Map each custom error's 4-byte selector to its name."""
    out: dict[bytes, str] = {}
    for item in abi:
        if item.get("type") == "error":
            types = ",".join(_canonical_type(i) for i in item.get("inputs", []))
            out[keccak(text=f"{item['name']}({types})")[:4]] = str(item["name"])
    return out


def _canonical_type(param: dict[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind
