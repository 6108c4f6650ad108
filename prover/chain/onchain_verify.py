"""Verifying a proof with a deployed verifier contract: an ``eth_call``, no transaction, no gas.

The verdict is the contract's: a revert, an empty or malformed return, or anything but ``true`` is
invalid. The contract must be the bundle's verifier (its runtime code is compared with the
bundle's ``verifier.json``), so a wrong ``--verifier`` address is an error, not a verdict.
"""

from __future__ import annotations

from prover.chain.client import ChainClient, redact_url
from prover.chain.contracts import verifier_artifact
from prover.core import bundle as b
from prover.core.fields import felt_from_hex
from prover.core.proofs import ParsedProof
from prover.core.verify import CheckerFactory
from prover.errors import ArtifactError, ChainError, TransactionReverted

__all__ = ["OnChainChecker", "onchain_checker"]

_EMPTY_CODE_HASH = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


class OnChainChecker:
    """Checks parsed proofs with the bundle's verifier deployed at ``address``."""

    def __init__(self, client: ChainClient, bundle: b.Bundle, address: str) -> None:
        bundle.check((b.VERIFIER_JSON,))
        artifact = verifier_artifact(bundle.path(b.VERIFIER_JSON))
        code_hash = client.code_hash(address)
        if code_hash == _EMPTY_CODE_HASH:
            raise ChainError(
                f"{address}: no contract there on chain {client.chain_id}",
                field="verifier",
                hint="deploy the bundle first (`zkinfer deploy`) or check the address and "
                "{rpc_url}",
            )
        if code_hash != artifact.runtime_code_hash:
            raise ArtifactError(
                f"{address}: the contract there is not this bundle's verifier "
                "(its code differs from verifier.json)",
                field="verifier",
                hint="check the address or the bundle",
            )
        self.client = client
        self.address = address
        self.contract = client.contract(artifact, address)

    def __call__(self, parsed: ParsedProof) -> tuple[bool, str]:
        """``(valid, reason)``; RPC failures raise :class:`ChainError`: no chain, no verdict."""
        instances = [felt_from_hex(h) for h in parsed.instances]
        call = self.contract.functions.verifyProof(bytes(parsed.proof), instances)
        try:  # an RPC failure (rate limit, node error) is a ChainError: no verdict without a chain
            result = self.client.call(call, "verifyProof")
        except TransactionReverted as exc:  # a revert, an empty or short return
            return False, f"the on-chain verifier rejected the proof: {exc}"
        if result is not True:
            return False, f"the on-chain verifier returned {result!r}"
        return True, ""


def onchain_checker(
    rpc_url: str, verifier: str, chain_id: int | None = None
) -> tuple[str, CheckerFactory]:
    """A named checker for :func:`prover.core.verify.verify`: the contract at ``verifier``."""
    client = ChainClient.connect(rpc_url, expected_chain_id=chain_id)
    name = f"verifier {verifier} on chain {client.chain_id} ({redact_url(rpc_url)})"
    return name, lambda bundle: OnChainChecker(client, bundle, verifier)
