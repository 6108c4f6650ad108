"""The proof file: ezkl's proof JSON plus a ``zkinfer`` section of claims that verify never trusts.

Only ``instances`` and ``proof`` carry meaning for verification. Before ezkl sees a proof it is
re-encoded canonically: exactly one instance column of reduced field elements, of the count the
bundle's layout records, and proof bytes of exactly the length the circuit produces (halo2 ignores
trailing bytes, so without that check one proof would have many encodings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.core.fields import felt_from_hex, felt_to_hex
from prover.core.jsonio import loads_bounded

__all__ = ["MalformedProof", "ParsedProof", "parse_proof", "read_proof_file"]


class MalformedProof(ValueError):
    """The proof document is not a well-formed proof for this bundle (a verdict, not a crash)."""


@dataclass(frozen=True)
class ParsedProof:
    """A structurally checked proof: canonical instances and bytes, and the unverified claims."""

    instances: list[str]
    proof: list[int]
    claims: dict[str, Any]

    def canonical(self) -> dict[str, Any]:
        """The ezkl proof document rebuilt from the checked fields only."""
        return {
            "protocol": None,
            "instances": [self.instances],
            "proof": self.proof,
            "split": None,
        }


#: Proofs of the circuits zkinfer builds are tens of kilobytes; refuse to parse far larger files.
MAX_PROOF_FILE_BYTES = 8 * 1024 * 1024


def read_proof_file(path: Path) -> Any:
    """Parse a proof file as JSON; :class:`MalformedProof` if it is too large or not JSON."""
    size = Path(path).stat().st_size
    if size > MAX_PROOF_FILE_BYTES:
        raise MalformedProof(f"{size} bytes is far larger than any proof (limit 8 MiB)")
    try:
        return loads_bounded(Path(path).read_bytes())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, huge integers
        raise MalformedProof(f"not JSON ({str(exc)[:200]})") from None


def parse_proof(doc: Any, *, expected_instances: int, expected_bytes: int) -> ParsedProof:
    """Check a proof document's structure against the bundle; raise :class:`MalformedProof`."""
    if not isinstance(doc, dict) or "proof" not in doc or "instances" not in doc:
        raise MalformedProof('not a proof: expected a JSON object with "proof" and "instances"')
    columns = doc["instances"]
    if not isinstance(columns, list) or len(columns) != 1 or not isinstance(columns[0], list):
        raise MalformedProof(
            '"instances" must be a list holding exactly one list of field elements'
        )
    try:
        values = [felt_from_hex(v) for v in columns[0]]
    except ValueError as exc:
        raise MalformedProof(f'"instances": {exc}') from None
    if len(values) != expected_instances:
        raise MalformedProof(
            f'"instances" has {len(values)} values; this bundle\'s circuit has {expected_instances}'
        )
    raw = doc["proof"]
    if isinstance(raw, str):  # accept a hex string as well as ezkl's list of bytes
        try:
            raw = list(bytes.fromhex(raw.removeprefix("0x")))
        except ValueError:
            raise MalformedProof('"proof" is a string but not hex') from None
    if not isinstance(raw, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in raw
    ):
        raise MalformedProof('"proof" must be a list of bytes (integers 0-255) or a hex string')
    if len(raw) != expected_bytes:
        raise MalformedProof(
            f'"proof" has {len(raw)} bytes; proofs of this circuit have exactly {expected_bytes}'
        )
    for field in ("protocol", "split"):
        # both are null in every single-circuit proof; anything else is another encoding
        if doc.get(field) is not None:
            raise MalformedProof(f'"{field}" must be null for a zkinfer proof')
    claims = doc.get("zkinfer")
    return ParsedProof(
        instances=[felt_to_hex(v) for v in values],
        proof=list(raw),
        claims=claims if isinstance(claims, dict) else {},
    )
