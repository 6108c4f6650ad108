"""Structured reference strings (SRS) for KZG: where they come from and whether to trust them.

A KZG SRS is only safe if nobody knows its secret. The Perpetual Powers of Tau ceremony files are;
an SRS generated here is not (its creator could forge proofs), so it is marked ``dev-unsafe`` and
that mark follows the bundle everywhere. Provenance is decided by digest alone: a supplied file is
``ceremony`` only when its SHA-256 equals the published digest for its size.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from prover.core import ezkl_backend
from prover.core.hashing import sha256_file
from prover.core.progress import StepTimer
from prover.errors import SrsError
from prover.settings import get_settings

__all__ = [
    "CEREMONY",
    "DEV_UNSAFE",
    "SrsChoice",
    "cached_ceremony_srs",
    "ceremony_digests",
    "resolve_srs",
    "srs_logrows",
]

CEREMONY = "ceremony"
DEV_UNSAFE = "dev-unsafe"


@dataclass(frozen=True)
class SrsChoice:
    """The SRS a bundle is built on: file, its logrows, digest and provenance."""

    path: Path
    logrows: int
    sha256: str
    provenance: str
    note: str


def ceremony_digests() -> dict[int, str]:
    """The published SHA-256 of each ceremony SRS file, by logrows (shipped with the package)."""
    text = resources.files("prover.data").joinpath("ceremony_srs_sha256.json").read_text()
    return {int(k): v for k, v in json.loads(text)["sha256_by_k"].items()}


def srs_logrows(path: Path) -> int:
    """Read the logrows ``k`` from a halo2 KZG parameter file's header (a little-endian u32)."""
    with path.open("rb") as f:
        head = f.read(4)
    if len(head) != 4:
        raise SrsError(f"{path}: too short to be a KZG SRS file")
    k = int.from_bytes(head, "little")
    if not 1 <= k <= 28:
        raise SrsError(f"{path}: not a halo2 KZG SRS file (header says k={k})")
    return k


def _dev_srs(logrows: int, timer: StepTimer) -> Path:
    folder = get_settings().srs_dir / DEV_UNSAFE
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"kzg{logrows}.srs"
    if not path.is_file():
        tmp = folder / f".kzg{logrows}.srs.{os.getpid()}.tmp"
        with timer.step("generate dev SRS", f"k={logrows}, cached in {folder}"):
            ezkl_backend.gen_srs(tmp, logrows)
        os.replace(tmp, path)
    return path


def cached_ceremony_srs(logrows: int, digests: dict[int, str] | None = None) -> Path | None:
    """A cached ceremony SRS file for ``logrows`` or more, checked against its digest."""
    digests = digests or ceremony_digests()
    folder = get_settings().srs_dir / CEREMONY
    for k in range(logrows, max(digests) + 1):
        candidate = folder / f"kzg{k}.srs"
        if candidate.is_file() and sha256_file(candidate) == digests.get(k):
            return candidate
    return None


def import_ceremony_srs(path: Path) -> Path:
    """Copy a ceremony SRS file into the cache after checking its digest; return the cached path."""
    choice = _check_supplied(path, 1, field=None)
    if choice.provenance != CEREMONY:
        raise SrsError(f"{path}: {choice.note}; only ceremony files are imported")
    folder = get_settings().srs_dir / CEREMONY
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"kzg{choice.logrows}.srs"
    shutil.copyfile(path, target)
    return target


def _check_supplied(path: Path, logrows: int, *, field: str | None = "srs") -> SrsChoice:
    if not path.is_file():
        raise SrsError(
            f"{path}: SRS file not found", field=field, hint="pass an existing kzg<k>.srs file"
        )
    k = srs_logrows(path)
    if k < logrows:
        raise SrsError(
            f"{path}: this SRS has logrows {k} but the circuit needs {logrows}",
            field=field,
            hint=f"use kzg{logrows}.srs (or larger)",
        )
    digest = sha256_file(path)
    if ceremony_digests().get(k) == digest:
        return SrsChoice(path, k, digest, CEREMONY, f"matches the ceremony digest for k={k}")
    return SrsChoice(
        path,
        k,
        digest,
        DEV_UNSAFE,
        f"does not match the published ceremony digest for k={k}: treated as dev-unsafe",
    )


def resolve_srs(logrows: int, *, srs_file: Path | None, dev: bool, timer: StepTimer) -> SrsChoice:
    """Pick the SRS for ``logrows``: a supplied file, a cached ceremony file, or a dev SRS.

    Raises :class:`SrsError` naming both remedies when none is available.
    """
    if srs_file is not None:
        return _check_supplied(Path(srs_file), logrows)
    digests = ceremony_digests()
    cached = cached_ceremony_srs(logrows, digests)
    if cached is not None:
        k = srs_logrows(cached)
        return SrsChoice(cached, k, digests[k], CEREMONY, f"cached ceremony file for k={k}")
    if dev:
        path = _dev_srs(logrows, timer)
        return SrsChoice(
            path,
            logrows,
            sha256_file(path),
            DEV_UNSAFE,
            "generated locally: whoever holds it can forge proofs; for local development only",
        )
    raise SrsError(
        f"no SRS for logrows {logrows}",
        hint=f"pass {{srs}} kzg{logrows}.srs (a Perpetual Powers of Tau file, checked against its "
        "published digest; `zkinfer srs import FILE` caches it) or {dev_srs} to generate an "
        "unsafe development SRS",
    )
