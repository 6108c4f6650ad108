"""Factories shared by the tests: running the real CLI and making bad artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"


@dataclass(frozen=True)
class CliResult:
    """Exit code and output of one ``zkinfer`` run."""

    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected exactly one JSON line on stdout, got: {self.stdout!r}"
        doc = json.loads(lines[0])
        assert isinstance(doc, dict)
        return doc


def zkinfer(*args: str | Path, env: dict[str, str] | None = None) -> CliResult:
    """Run the installed CLI in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "prover", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=900,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def resync_hex_proof(doc: dict[str, Any]) -> dict[str, Any]:
    """Make ezkl's ``hex_proof`` copy say the same bytes as an edited ``proof``, so that a
    tampered document reaches the cryptographic check (verify refuses a document whose two
    copies disagree before any cryptography)."""
    if "hex_proof" in doc:
        doc["hex_proof"] = "0x" + bytes(doc["proof"]).hex()
    return doc


def model_files(name: str) -> tuple[Path, Path, Path]:
    """The committed ONNX, sample input and calibration file of a reference model."""
    folder = MODELS / name
    return folder / "network.onnx", folder / "input.json", folder / "calibration.json"


def sample_values(name: str) -> list[float]:
    doc = json.loads((MODELS / name / "input.json").read_text())
    values: list[float] = doc["input_data"][0]
    return values


def compile_args(name: str, out: Path, *extra: str | Path) -> list[str | Path]:
    """CLI arguments that compile a reference model with its calibration data into ``out``."""
    onnx, sample, calibration = model_files(name)
    return ["compile", onnx, "--sample", sample, "--calibration", calibration, "--out", out, *extra]


def own_home(tmp_path: Path) -> Path:
    """A data directory of its own (deployments, worker cursor, devnet); the cache, with the
    session's SRS files, stays shared (``ZKINFER_CACHE_DIR``), so that no test generates a
    development SRS twice."""
    home = tmp_path / "home"
    home.mkdir()
    return home


def own_cache(tmp_path: Path) -> Path:
    """A cache of its own (bundle downloads, proof folders) that shares the session's SRS files,
    for a test whose downloads must not pile up in the session's cache."""
    shared = Path(os.environ["ZKINFER_CACHE_DIR"]) / "srs"
    shared.mkdir(parents=True, exist_ok=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "srs").symlink_to(shared)
    return cache
