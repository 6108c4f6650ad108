"""The calldata a model's generated verifier contract takes for a proof, computed from the
canonical (checked) proof fields: the ABI encoding of ``verifyProof(bytes, uint256[])``. ezkl 23's
``encode_evm_calldata`` gives the same bytes followed by one zero word, which the contract
ignores."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from prover.core.fields import felt_from_hex
from prover.core.hashing import sha256_bytes
from prover.core.manifest import Manifest
from prover.core.proofs import ParsedProof, parse_proof

__all__ = ["VERIFY_PROOF_SELECTOR", "canonical_proof", "proof_digest", "verifier_calldata"]

VERIFY_PROOF_SELECTOR = keccak(text="verifyProof(bytes,uint256[])")[:4]


def _parsed(proof: dict[str, Any], manifest: Manifest) -> ParsedProof:
    return parse_proof(
        proof, expected_instances=manifest.instances.total, expected_bytes=manifest.proof_bytes
    )


def canonical_proof(proof: dict[str, Any], manifest: Manifest) -> dict[str, Any]:
    """The proof rebuilt from its checked fields only: what the service hands to clients, without
    the provider's unverified claims (its ``zkinfer`` section)."""
    return _parsed(proof, manifest).canonical()


def proof_digest(proof: dict[str, Any], manifest: Manifest) -> str:
    """Hex SHA-256 of the canonical proof bytes: equal digests mean a copied proof."""
    return sha256_bytes(bytes(_parsed(proof, manifest).proof))


def verifier_calldata(proof: dict[str, Any], manifest: Manifest) -> str:
    """``0x``-hex calldata of ``verifyProof(bytes proof, uint256[] instances)`` for ``proof``."""
    parsed = _parsed(proof, manifest)
    instances = [felt_from_hex(h) for h in parsed.instances]
    encoded = abi_encode(["bytes", "uint256[]"], [bytes(parsed.proof), instances])
    return "0x" + (VERIFY_PROOF_SELECTOR + encoded).hex()
