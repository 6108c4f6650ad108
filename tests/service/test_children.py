"""The child processes the service starts never outlive a cancelled job."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from prover.service.compiler import CompileJob, compile_in_subprocess
from prover.service.verifier import verify_in_subprocess
from tests.conftest import Compiled
from tests.helpers import model_files

pytestmark = pytest.mark.slow


def _running(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(proc.name))
    return found


def test_a_cancelled_compile_kills_its_child(tmp_path: Path) -> None:
    network, inp, calibration = model_files("breast_cancer_mlp")
    out = tmp_path / "bundle-of-a-cancelled-compile"
    job = CompileJob(network, inp, calibration, out, dev_srs=True)

    async def scenario() -> None:
        task = asyncio.create_task(
            compile_in_subprocess(job, memory_bytes=8 * 1024**3, timeout_s=600)
        )
        for _ in range(50):
            await asyncio.sleep(0.1)
            if _running(str(out)):
                break
        assert _running(str(out)), "the compile child never started"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert _running(str(out)) == []


def test_a_cancelled_verification_kills_its_child(mlp: Compiled) -> None:
    proof = json.loads(mlp.proof.read_text())
    marker = f"--bundle {mlp.bundle.root}"

    async def scenario() -> None:
        task = asyncio.create_task(verify_in_subprocess(mlp.bundle.root, proof, timeout_s=60))
        for _ in range(50):
            await asyncio.sleep(0.05)
            if _running(marker):
                break
        assert _running(marker), "the verifier child never started"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert _running(marker) == []
