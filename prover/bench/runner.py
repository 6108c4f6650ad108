"""Shared measuring tools of ``zkinfer bench``: a timed child process with its own peak memory,
the reference models' sample rows, and the compiled bundles every section reuses.

Each measured step runs in its own process so that its peak resident memory (``ru_maxrss`` from
``wait4``, which covers the process and the children it waited for, such as ezkl's isolated
step runner) belongs to that step alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from prover.errors import ToolchainError

__all__ = [
    "Bundles",
    "Compiled",
    "Measured",
    "ModelFiles",
    "batch_files",
    "measure",
    "median",
    "zkinfer_cmd",
]


@dataclass(frozen=True)
class Measured:
    """One child process: wall seconds, its peak RSS in MiB, and what it printed on stdout."""

    wall_s: float
    peak_mib: float
    stdout: str


def measure(args: list[str], *, env: dict[str, str] | None = None) -> Measured:
    """Run ``args`` to completion and measure it; a failing command raises ToolchainError."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode(errors="replace")[-800:]
            raise ToolchainError(f"bench step failed ({' '.join(args[:4])}...): {tail}")
        return Measured(wall, usage.ru_maxrss / 1024, out.read().decode())


def zkinfer_cmd(*args: str | Path) -> list[str]:
    """The command line of ``zkinfer ARGS`` with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "prover", *map(str, args)]


def median(values: list[float], digits: int = 3) -> float:
    """The median, rounded; the figure every repeated measurement reports."""
    return round(statistics.median(values), digits)


@dataclass(frozen=True)
class ModelFiles:
    """A reference model folder: ``network.onnx``, ``input.json``, ``calibration.json``."""

    folder: Path

    @property
    def name(self) -> str:
        """The folder's name, which the tables use as the model's name."""
        return self.folder.name

    @property
    def onnx(self) -> Path:
        """The ONNX file."""
        return self.folder / "network.onnx"

    @property
    def sample(self) -> Path:
        """One sample input (batch 1)."""
        return self.folder / "input.json"

    @property
    def calibration(self) -> Path:
        """The calibration samples, concatenated."""
        return self.folder / "calibration.json"

    def rows(self) -> list[list[float]]:
        """The calibration samples, one flattened row each (single-input models only)."""
        width = len(json.loads(self.sample.read_text())["input_data"][0])
        flat = json.loads(self.calibration.read_text())["input_data"][0]
        return [flat[i : i + width] for i in range(0, len(flat), width)]


def _write_rows(path: Path, rows: list[list[float]]) -> Path:
    path.write_text(json.dumps({"input_data": [[v for row in rows for v in row]]}) + "\n")
    return path


def batch_files(model: ModelFiles, batch: int, folder: Path) -> tuple[Path, Path]:
    """A sample of ``batch`` rows and a calibration file whose length is a multiple of it.

    The rows are the model's calibration samples, repeated when ``batch`` exceeds their count,
    so every batch size is calibrated on the same values (and so gets the same ranges).
    """
    rows = model.rows()
    folder.mkdir(parents=True, exist_ok=True)
    need = batch * -(-len(rows) // batch)  # at least every row once, a multiple of ``batch``
    tiled = [rows[i % len(rows)] for i in range(need)]
    sample = _write_rows(folder / f"sample-{batch}.json", tiled[:batch])
    calibration = _write_rows(folder / f"calibration-{batch}.json", tiled)
    return sample, calibration


@dataclass(frozen=True)
class Compiled:
    """A bundle compiled from cold by this run, and what the compile cost."""

    root: Path
    batch: int
    logrows: int
    compile_s: float
    compile_peak_mib: float
    pk_bytes: int
    sample: Path


class Bundles:
    """The bundles of one bench run, compiled from cold once each (``--force``), then shared by
    every section that needs the same model at the same batch size."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._done: dict[tuple[str, int], Compiled] = {}

    def get(self, model: ModelFiles, batch: int = 1) -> Compiled:
        """The bundle of ``model`` compiled for ``batch`` inputs per proof (dev SRS)."""
        key = (model.name, batch)
        if key not in self._done:
            folder = self.work / model.name / f"batch-{batch}"
            if batch == 1:
                sample, calibration = model.sample, model.calibration
            else:
                sample, calibration = batch_files(model, batch, folder / "data")
            root = folder / "bundle"
            ran = measure(
                zkinfer_cmd(
                    "compile", model.onnx, "--sample", sample, "--calibration", calibration,
                    "--out", root, "--batch", str(batch), "--dev-srs", "--force", "--json",
                )
            )  # fmt: skip
            doc = json.loads(ran.stdout)
            self._done[key] = Compiled(
                root=root,
                batch=batch,
                logrows=int(doc["logrows"]),
                compile_s=round(ran.wall_s, 2),
                compile_peak_mib=round(ran.peak_mib),
                pk_bytes=int(doc["pk_bytes"]),
                sample=sample,
            )
        return self._done[key]
