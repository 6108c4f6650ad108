"""The model bundle: one folder holding everything to prove and verify one compiled model.

``manifest.json`` records the SHA-256 of every other file; anything that reads a bundle checks the
digests of the files it uses first, so a swapped key or settings file is caught before ezkl sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prover.core import ezkl_backend
from prover.core.hashing import sha256_file_once
from prover.core.jsonio import loads_bounded
from prover.core.manifest import Manifest
from prover.core.manifest_check import check_manifest
from prover.errors import ArtifactError, UsageError
from prover.version import BUNDLE_FORMAT, EZKL_VERSION

__all__ = ["FILES", "Bundle", "check_files", "load_bundle"]

ONNX = "network.onnx"
SETTINGS = "settings.json"
COMPILED = "network.compiled"
VK = "vk.key"
PK = "pk.key"
SRS = "kzg.srs"
SOLIDITY = "Verifier.sol"
VERIFIER_JSON = "verifier.json"
MANIFEST = "manifest.json"
FILES = (ONNX, SETTINGS, COMPILED, VK, PK, SRS, SOLIDITY, VERIFIER_JSON)
#: What each operation reads; only these files are hashed for it (``Verifier.sol`` backs the
#: proof length that verify enforces).
VERIFY_FILES = (ONNX, SETTINGS, VK, SRS, SOLIDITY)
PROVE_FILES = (ONNX, SETTINGS, COMPILED, VK, PK, SRS, SOLIDITY)
#: What the chain layer derives a registration, a request's commitment and its outputs from:
#: the verifier, and the files the manifest's instance layout and shapes are checked against
#: (a manifest with its layout changed keeps its model id, so its word alone is not enough).
CHAIN_FILES = (ONNX, SETTINGS, VK, SOLIDITY, VERIFIER_JSON)
#: What proving reads before the proof itself: ``pk.key``, the largest file by far, is needed by
#: ezkl's prove step only, so it can be checked while the witness is made.
WITNESS_FILES = tuple(name for name in PROVE_FILES if name != PK)


@dataclass(frozen=True)
class Bundle:
    """A compiled model on disk and its parsed manifest."""

    root: Path
    manifest: Manifest

    def path(self, name: str) -> Path:
        """The path of one of the bundle's files."""
        return self.root / name

    @property
    def model_id(self) -> str:
        """The content address of the compiled model (see :func:`model_id_for`)."""
        return self.manifest.model_id

    @property
    def srs_provenance(self) -> str:
        """``ceremony`` (checked against the published digest) or ``dev-unsafe``."""
        return self.manifest.srs.provenance

    @property
    def proof_bytes(self) -> int:
        """The length of every proof of this circuit (checked against ``Verifier.sol``)."""
        return self.manifest.proof_bytes

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical manifest: one value that pins every file of the bundle."""
        return self.manifest.digest

    def check(self, names: tuple[str, ...]) -> None:
        """Check that each named file exists and matches its recorded digest.

        A file is read once per process while its identity (device, inode, size, mtime, ctime)
        is unchanged (:func:`~prover.core.hashing.sha256_file_once`): a long-running prover
        checks every file before each use, but hashes a proving key again only when it was
        replaced or written.
        """
        recorded = self.manifest.files
        for name in names:
            path = self.path(name)
            if name not in recorded:
                raise ArtifactError(f"{self.root / MANIFEST}: records no digest for {name}")
            if not path.is_file():
                raise ArtifactError(
                    f"{path}: missing from the bundle; recompile with `zkinfer compile`"
                )
            actual = sha256_file_once(path)
            if actual != recorded[name]:
                raise ArtifactError(
                    f"{path}: digest mismatch (manifest {recorded[name][:16]}..., file "
                    f"{actual[:16]}...): the file was changed or corrupted after compile; "
                    "restore it or recompile the bundle"
                )


def check_files(bundle: Bundle, names: tuple[str, ...]) -> None:
    """Check more files of a loaded bundle, exactly as :func:`load_bundle` checks ``check``:
    each file's digest, then the manifest fields derived from it."""
    bundle.check(names)
    check_manifest(bundle.manifest, bundle.root / MANIFEST, root=bundle.root, checked=names)


def _not_a_folder(path: Path) -> str:
    """Why a file given as a bundle is not one, and what to pass instead."""
    with path.open("rb") as f:
        head = f.read(64)
    # an ONNX file is a protobuf ModelProto, whose first field is ir_version (tag byte 0x08)
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":
        return (
            f"{path} is an ONNX model, not a bundle: compile it into a bundle folder first "
            "(zkinfer compile) and pass that folder"
        )
    if path.name == MANIFEST:
        return f"{path} is a bundle's manifest; pass the folder that holds it ({path.parent})"
    return f"{path} is a file; a bundle is the folder that compile wrote"


def load_bundle(root: Path, check: tuple[str, ...] = ()) -> Bundle:
    """Open a bundle folder, parse its manifest and check the digests of ``check`` files."""
    root = Path(root)
    manifest_path = root / MANIFEST
    if root.is_file():
        raise UsageError(_not_a_folder(root))
    if not root.is_dir():
        raise ArtifactError(f"{root}: no such bundle folder; create one with `zkinfer compile`")
    try:
        raw = loads_bounded(manifest_path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{manifest_path}: missing; {root} is not a zkinfer bundle") from None
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON, absurdly nested
        raise ArtifactError(f"{manifest_path}: unreadable or not JSON ({exc})") from None
    made_with = raw.get("ezkl_version") if isinstance(raw, dict) else None
    if isinstance(raw, dict) and raw.get("format") == BUNDLE_FORMAT and made_with != EZKL_VERSION:
        raise ArtifactError(
            f"{manifest_path}: made with ezkl {made_with}, but this zkinfer makes and reads "
            f"bundles of ezkl {EZKL_VERSION}; proof and key formats change between ezkl versions: "
            "recompile the bundle with this zkinfer"
        )
    ezkl_backend.check_ezkl_version()
    manifest = Manifest.from_json(raw, manifest_path)
    bundle = Bundle(root=root, manifest=manifest)
    check_files(bundle, check)
    return bundle
