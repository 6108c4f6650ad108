"""BN254 scalar-field elements as ezkl writes them, and their fixed-point meaning."""

from __future__ import annotations

import re

__all__ = [
    "FIELD_MODULUS",
    "felt_from_hex",
    "felt_to_hex",
    "felt_to_signed",
    "signed_to_float",
]

#: The BN254 scalar field modulus (the field ezkl's Halo2 circuits work over).
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def felt_from_hex(text: str) -> int:
    """Parse ezkl's instance encoding (64 hex digits, little-endian) into a canonical field element.

    Raises ``ValueError`` for anything else, including values at or above the modulus, so that no
    two encodings name the same instance.
    """
    if not isinstance(text, str) or not _HEX64.match(text):
        raise ValueError("a field element must be 64 hex digits (32 bytes, little-endian)")
    value = int.from_bytes(bytes.fromhex(text), "little")
    if value >= FIELD_MODULUS:
        raise ValueError("field element is not reduced modulo the BN254 scalar field")
    return value


def felt_to_hex(value: int) -> str:
    """Encode a field element as ezkl does (64 hex digits, little-endian)."""
    return (value % FIELD_MODULUS).to_bytes(32, "little").hex()


def felt_to_signed(value: int) -> int:
    """Read a field element as a signed integer: the upper half of the field holds negatives."""
    return value - FIELD_MODULUS if value > FIELD_MODULUS // 2 else value


def signed_to_float(value: int, scale: int) -> float:
    """Undo ezkl's fixed-point encoding: ``value / 2**scale``."""
    return value / float(2**scale)
