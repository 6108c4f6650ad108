"""A real anvil node per test session, role clients, and small contracts that attack the market."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account

from prover.chain.client import ChainClient
from prover.chain.contracts import Artifact, load_artifact
from prover.chain.devnet import temporary_anvil
from prover.core.solidity import compile_solidity

#: anvil's public development keys 0-3 (mnemonic "test test ... junk").
KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)
OWNER, PROVIDER, REQUESTER, OTHER = range(4)
CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"


@dataclass(frozen=True)
class Anvil:
    """A running anvil node."""

    url: str
    chain_id: int

    def client(self, role: int | None = OWNER) -> ChainClient:
        signer = None if role is None else Account.from_key(KEYS[role])
        return ChainClient.connect(
            self.url,
            signer=signer,
            known_errors=[load_artifact("InferenceMarket"), load_artifact("ScreeningConsumer")],
        )

    def rpc(self, method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        req = urllib.request.Request(self.url, body.encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read()).get("result")

    def advance(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine", [])


@contextmanager
def run_anvil(chain_id: int = 31337, *, unlimited_code_size: bool = False) -> Iterator[Anvil]:
    """A throwaway anvil node (no state file), stopped afterwards; ``unlimited_code_size`` lifts
    EIP-170's limit on deployed code, as no public chain does."""
    with temporary_anvil(chain_id, unlimited_code_size=unlimited_code_size) as url:
        yield Anvil(url, chain_id)


def attacker(name: str) -> Artifact:
    """One of the contracts in tests/contracts/Attackers.sol, compiled with solc-js."""
    c = compile_solidity(CONTRACTS / "Attackers.sol", name, optimizer_runs=200)
    return Artifact(name, c.abi, "0x" + c.bytecode, "0x" + c.deployed_bytecode)
