"""Compiling the generated Solidity verifier with solc-js (no native solc is reachable offline)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.core.paths import solc_script
from prover.errors import ToolchainError

__all__ = ["EIP170_LIMIT", "CompiledContract", "compile_solidity"]

#: The EVM's limit on deployed (runtime) bytecode size, EIP-170.
EIP170_LIMIT = 24_576
_INSTALL_HINT = (
    "run `make install` (it runs `npm ci` in verifier_contracts/) or set ZKINFER_SOLC_JS"
)


@dataclass(frozen=True)
class CompiledContract:
    """ABI and bytecode of one compiled contract, and the compiler that made them."""

    name: str
    abi: list[Any]
    bytecode: str
    deployed_bytecode: str
    compiler: str

    @property
    def runtime_size(self) -> int:
        """Deployed bytecode size in bytes (the EIP-170 limit applies to it)."""
        return len(self.deployed_bytecode) // 2

    def to_json(self) -> dict[str, Any]:
        """The form written to ``verifier.json``."""
        return {
            "contract": self.name,
            "abi": self.abi,
            "bytecode": "0x" + self.bytecode,
            "deployed_bytecode": "0x" + self.deployed_bytecode,
            "runtime_size": self.runtime_size,
            "compiler": self.compiler,
        }


def _run(args: list[str], stdin: str | None = None) -> str:
    node = shutil.which("node")
    script = solc_script()
    if node is None:
        raise ToolchainError(
            f"node is not installed; it runs solc-js. Install Node.js, then {_INSTALL_HINT}"
        )
    if not script.is_file() or not (script.parent.parent / "node_modules" / "solc").is_dir():
        raise ToolchainError(f"solc-js is not installed at {script.parent.parent}; {_INSTALL_HINT}")
    proc = subprocess.run(
        [node, str(script), *args], input=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ToolchainError(
            f"solc-js failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}"
        )
    return proc.stdout


def compile_solidity(source: Path, contract: str, *, optimizer_runs: int = 1) -> CompiledContract:
    """Compile one contract of a Solidity file; raise :class:`ToolchainError` on any error."""
    version = _run(["--version"]).strip().splitlines()[-1].removeprefix("Version: ")
    request = {
        "language": "Solidity",
        "sources": {source.name: {"content": source.read_text()}},
        "settings": {
            # runs=1 favours small bytecode: verifiers sit close to the EIP-170 size limit.
            "optimizer": {"enabled": True, "runs": optimizer_runs},
            "evmVersion": "cancun",
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }
    out = json.loads(_run(["--standard-json"], json.dumps(request)))
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        first = errors[0].get("formattedMessage", errors[0].get("message", "?"))
        raise ToolchainError(f"solc-js rejected {source.name}: {first.strip()[:800]}")
    try:
        c = out["contracts"][source.name][contract]
    except KeyError:
        raise ToolchainError(f"{source.name} has no contract named {contract}") from None
    return CompiledContract(
        name=contract,
        abi=c["abi"],
        bytecode=c["evm"]["bytecode"]["object"],
        deployed_bytecode=c["evm"]["deployedBytecode"]["object"],
        compiler=f"solc-js {version}",
    )
