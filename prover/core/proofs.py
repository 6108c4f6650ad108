"""The proof file: ezkl's proof JSON plus a ``zkinfer`` section of claims that verify never trusts.

Only ``instances`` and ``proof`` carry meaning for verification. Before ezkl sees a proof it is
re-encoded canonically: exactly one instance column of reduced field elements, of the count the
bundle's layout records, and proof bytes of exactly the length the circuit produces (halo2 ignores
trailing bytes, so without that check one proof would have many encodings).

A document whose other fields say something else than the verified ones is refused rather than
passed on: ``hex_proof`` must be the same bytes as ``proof``, and the claims a reader would take
for results (:data:`CHECKED_CLAIMS`) must equal what the verified instances say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.core.fields import felt_from_hex, felt_to_hex
from prover.core.jsonio import loads_bounded

__all__ = [
    "CHECKED_CLAIMS",
    "MalformedProof",
    "ParsedProof",
    "claims_problem",
    "parse_proof",
    "read_proof_file",
]

#: Claims of the ``zkinfer`` section that must equal what the verified instances and the bundle
#: say; the others (ONNX Runtime's outputs, timestamps, the note) are for people and unverified.
CHECKED_CLAIMS = ("model_id", "outputs", "input_hash", "output_hash", "srs_provenance")


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
    hex_proof = doc.get("hex_proof")
    if hex_proof is not None and (
        not isinstance(hex_proof, str) or hex_proof.lower().removeprefix("0x") != bytes(raw).hex()
    ):
        raise MalformedProof(
            '"hex_proof" disagrees with "proof": a document must carry one proof; drop '
            '"hex_proof" or make it the hex of "proof"'
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


def _as_floats(value: Any) -> list[list[float]] | None:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        return None
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for r in value for x in r):
        return None
    return [[float(x) for x in row] for row in value]


def claims_problem(claims: dict[str, Any], verified: dict[str, Any]) -> str | None:
    """The first claim of :data:`CHECKED_CLAIMS` that disagrees with ``verified``, described.

    ``verified`` maps each checked claim to the value decoded from the proof's instances (or the
    bundle's, for ``model_id`` and ``srs_provenance``); an absent claim is not a disagreement.
    """
    for name in CHECKED_CLAIMS:
        if name not in claims:
            continue
        claimed, actual = claims[name], verified[name]
        if name == "outputs" and claimed is not None:
            claimed = _as_floats(claimed)
        if claimed != actual:
            shown = str(claims[name])[:80]
            return (
                f'"zkinfer.{name}" claims {shown}, but the proof\'s verified instances and the '
                f"bundle say {str(actual)[:80]}; the document was edited after proving"
            )
    return None
