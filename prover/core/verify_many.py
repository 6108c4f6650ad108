"""Many proofs against one bundle: expanding folders and globs, and the aggregate verdict.

The bundle is opened and its digests checked once; each proof then gets its own verdict, or an
error when it could not be checked at all (a named file that does not exist or cannot be read).
The run's exit code is the most serious of its proofs': 3 when any proof could not be checked,
else 1 when any is invalid, else 0. An empty selection is a usage error, never "all valid".
"""

from __future__ import annotations

import fnmatch
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prover.core.progress import Progress, StepTimer
from prover.core.slots import require_slots
from prover.core.verify import (
    CheckerFactory,
    ExpectedInput,
    VerifyResult,
    bundle_warnings,
    open_bundle,
    verify_proof,
)
from prover.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    ArtifactError,
    UsageError,
)

__all__ = [
    "MAX_PROOFS",
    "ProofOutcome",
    "ProofSelection",
    "VerifyReport",
    "check_each",
    "select_proofs",
    "verify_many",
]

_GLOB_CHARS = frozenset("*?[")
#: The most proof files one run expands folders and patterns into.
MAX_PROOFS = 10_000

Status = Literal["valid", "invalid", "error"]


@dataclass(frozen=True)
class ProofSelection:
    """The proof files named on a command line, and whether they are to be reported as many."""

    paths: list[Path]
    #: True for several arguments, a folder or a glob, even when they name one file: the shape
    #: of the output depends on the command line, never on how many files happen to match.
    many: bool


def _is_glob(arg: str) -> bool:
    return any(c in _GLOB_CHARS for c in arg)


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:  # unreadable or vanished: as glob does, it matches nothing
        return []


def _glob(folder: Path, parts: Sequence[str]) -> Iterator[Path]:
    """Files under ``folder`` matching the pattern ``parts``, lazily.

    Like :func:`glob.glob` with ``recursive=True`` (``**`` spans any number of folders, hidden
    names match only a pattern that starts with a dot), except that ``**`` never enters a
    symlinked folder: a link back to a parent would make the walk endless.
    """
    part, rest = parts[0], parts[1:]
    if part == "**":
        if rest:
            yield from _glob(folder, rest)
        for e in _entries(folder):
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                yield from _glob(folder / e.name, parts)
            elif not rest and e.is_file():
                yield folder / e.name
        return
    if _is_glob(part):
        hidden = part.startswith(".")
        names = [
            e.name
            for e in _entries(folder)
            if (hidden or not e.name.startswith(".")) and fnmatch.fnmatchcase(e.name, part)
        ]
    else:
        names = [part]
    for name in names:
        path = folder / name
        if not rest:
            if path.is_file():
                yield path
        elif path.is_dir():
            yield from _glob(path, rest)


def _expand_pattern(text: str) -> Iterator[Path]:
    parts = Path(text).parts
    fixed = next(i for i, part in enumerate(parts) if _is_glob(part))
    return _glob(Path(*parts[:fixed]) if fixed else Path(), parts[fixed:])


def _bounded(found: Iterator[Path], what: str, limit: int) -> list[Path]:
    paths = sorted(set(itertools.islice(found, limit + 1)))
    if len(paths) > limit:
        raise UsageError(
            f"{what} matches more than {limit:,} files, the most one run verifies; "
            "narrow it or split the run"
        )
    return paths


def select_proofs(
    args: Sequence[str | Path], *, exclude: Path | None = None, limit: int = MAX_PROOFS
) -> ProofSelection:
    """Expand PROOF arguments into proof files, in argument order, each file once.

    An existing folder stands for its ``*.json`` files (not recursive); an argument with ``*``,
    ``?`` or ``[`` that is not an existing path is a glob pattern (``**`` recurses, without
    entering symlinked folders); anything else is one proof file, kept even if it does not exist
    so that the verdict can say so. Files under ``exclude`` (the bundle folder) are skipped when
    a folder or glob is expanded.

    Raises :class:`UsageError` when there is no argument, a folder or glob yields no file, or
    the selection would hold more than ``limit`` files.
    """
    if not args:
        raise UsageError("no proof given: name proof files, folders of proofs or glob patterns")
    skip = None if exclude is None else Path(exclude).resolve()
    paths: dict[Path, Path] = {}  # resolved -> as named; dicts keep insertion order
    many = len(args) > 1
    for arg in args:
        text = str(arg)
        path = Path(text)
        if path.is_dir():
            found = _bounded((p for p in path.glob("*.json") if p.is_file()), text, limit)
            empty = f"folder {text} holds no *.json file"
        elif not path.exists() and _is_glob(text):
            found = _bounded(_expand_pattern(text), f"pattern {text!r}", limit)
            empty = f"pattern {text!r} matches no file"
        else:
            paths.setdefault(path.resolve(), path)
            continue
        many = True
        kept = [p for p in found if not _inside(p, skip)]
        if not kept:
            where = " outside the bundle folder" if found else ""
            raise UsageError(
                f"{empty}{where}; check the path, and quote glob patterns so that the shell "
                "passes them to zkinfer unexpanded"
            )
        for p in kept:
            paths.setdefault(p.resolve(), p)
        if len(paths) > limit:
            raise UsageError(
                f"the proof arguments name more than {limit:,} files, the most one run "
                "verifies; split the run"
            )
    return ProofSelection(paths=list(paths.values()), many=many)


@dataclass(frozen=True)
class ProofOutcome:
    """One proof's verdict, or the error that kept it from getting one (never both)."""

    proof_path: Path
    result: VerifyResult | None = None
    error: Exception | None = None

    @property
    def status(self) -> Status:
        """``valid``, ``invalid``, or ``error`` when the proof could not be checked."""
        if self.result is None:
            return "error"
        return "valid" if self.result.valid else "invalid"

    @property
    def exit_code(self) -> int:
        """0 valid, 1 invalid, or the error's exit code (3 for a missing or unreadable file)."""
        if self.result is not None:
            return EXIT_OK if self.result.valid else EXIT_INVALID
        return int(getattr(self.error, "exit_code", EXIT_ENVIRONMENT))

    @property
    def message(self) -> str:
        """Why the proof is not valid (empty for a valid proof)."""
        if self.result is not None:
            return self.result.reason
        return str(self.error)

    def to_json(self) -> dict[str, Any]:
        """One JSON Lines record: the single-proof ``--json`` object, or an error object."""
        if self.result is not None:
            return {"ok": True, **self.result.to_json()}
        kind = type(self.error).__name__
        return {
            "ok": False,
            "proof": str(self.proof_path),
            "valid": False,
            "error": {"type": kind, "message": self.message},
        }


@dataclass(frozen=True)
class VerifyReport:
    """Every proof's outcome against one bundle, and the totals a CI system reports."""

    bundle_root: Path
    model_id: str
    srs_provenance: str
    outcomes: list[ProofOutcome]
    bundle_digest: str | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def count(self, status: Status) -> int:
        """How many proofs have ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def exit_code(self) -> int:
        """3 if any proof could not be checked, else 1 if any is invalid, else 0; 2 if none."""
        if not self.outcomes:
            return EXIT_USAGE
        return max(o.exit_code for o in self.outcomes)

    def summary(self) -> dict[str, Any]:
        """The totals, printed as the last JSON Lines record under ``"summary"``."""
        return {
            "total": len(self.outcomes),
            "valid": self.count("valid"),
            "invalid": self.count("invalid"),
            "errors": self.count("error"),
            "exit_code": self.exit_code,
            "bundle": str(self.bundle_root),
            "bundle_digest": self.bundle_digest,
            "model_id": self.model_id,
            "srs_provenance": self.srs_provenance,
            "warnings": self.warnings,
            "timings": self.timings,
        }

    @classmethod
    def of_one(cls, bundle_root: Path, result: VerifyResult) -> VerifyReport:
        """The report of a single-proof run (for its JUnit file)."""
        if result.proof_path is None:
            raise ValueError("a report lists proof files; this verdict is of a document")
        return cls(
            bundle_root=Path(bundle_root),
            model_id=result.model_id,
            srs_provenance=result.srs_provenance,
            outcomes=[ProofOutcome(result.proof_path, result=result)],
            warnings=list(result.warnings),
            timings=dict(result.timings),
        )


def check_each(
    paths: Sequence[Path],
    check: Callable[[Path], VerifyResult],
    *,
    on_outcome: Callable[[ProofOutcome], None] | None = None,
) -> list[ProofOutcome]:
    """Run ``check`` on every proof, turning a missing or unreadable file into an error outcome.

    Any other exception propagates: it is a problem shared by every proof (a bad input file) or a
    bug, not a property of one proof. ``on_outcome`` sees each outcome as soon as it is known.
    """
    outcomes = []
    for path in paths:
        try:
            outcome = ProofOutcome(path, result=check(path))
        except (ArtifactError, OSError) as exc:  # no such proof file, permission denied
            outcome = ProofOutcome(path, error=exc)
        if on_outcome is not None:
            on_outcome(outcome)
        outcomes.append(outcome)
    return outcomes


def verify_many(
    proof_paths: Sequence[Path],
    bundle_dir: Path,
    *,
    input_path: Path | None = None,
    slot: int | None = None,
    bundle_digest: str | None = None,
    progress: Progress | None = None,
    on_outcome: Callable[[ProofOutcome], None] | None = None,
    checker: tuple[str, CheckerFactory] | None = None,
) -> VerifyReport:
    """Verify every proof against one bundle, opened and checked once.

    With ``input_path`` every proof must be about that input; the input file is checked before
    any proof, so a bad one raises ``InputError`` (exit 2) at once. With ``slot``, each verdict
    is about that slot of a batch proof (see :func:`~prover.core.verify.verify`); a slot the
    bundle lacks is a ``UsageError`` before any proof. Raises ``ArtifactError``
    when the bundle cannot be used (missing, tampered, not the pinned digest).
    """
    timer = StepTimer(progress)
    bundle = open_bundle(Path(bundle_dir), bundle_digest=bundle_digest, timer=timer)
    expected = None
    if slot is not None:
        require_slots(bundle.manifest).check_slot(slot)
    if input_path is not None:
        expected = ExpectedInput(bundle, Path(input_path), slot=slot)
        expected.instances()

    name, proof_check = ("ezkl", None) if checker is None else (checker[0], checker[1](bundle))

    def check(path: Path) -> VerifyResult:
        return verify_proof(
            bundle, path, expected_input=expected, check=proof_check, checked_by=name, slot=slot
        )

    outcomes = check_each(proof_paths, check, on_outcome=on_outcome)
    return VerifyReport(
        bundle_root=bundle.root,
        model_id=bundle.model_id,
        srs_provenance=bundle.srs_provenance,
        outcomes=outcomes,
        bundle_digest=bundle.digest,
        warnings=bundle_warnings(bundle),
        timings=timer.timings,
    )
