"""The worker's proving child: real ezkl proofs in a real child process, killed on cancel, gone
when its parent is killed with ``kill -9``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from prover.core.verify import verify_values
from prover.protocol import FailureReason
from prover.worker.child import ProofCanceled, ProofFailed, ProverProcess
from tests.conftest import Compiled
from tests.helpers import REPO

pytestmark = pytest.mark.slow


def _values(sample: Path) -> list[list[float]]:
    values: list[list[float]] = json.loads(sample.read_text())["input_data"]
    return values


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    state = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return state not in ("Z", "X")


def test_a_proof_made_in_the_child_verifies_and_a_cancel_kills_it(tiny: Compiled) -> None:
    prover = ProverProcess()
    try:
        made = prover.prove(tiny.bundle.root, _values(tiny.sample), cancel=lambda: False)
        assert made.outputs is not None and made.prove_s > 0
        assert made.proof["zkinfer"]["outputs"] == made.outputs
        # the document that came back in memory is a proof the core accepts for that input
        verdict = verify_values(made.proof, tiny.bundle.root, values=_values(tiny.sample))
        assert verdict.valid, verdict.reason
        child = prover._proc.pid
        # cancel while the next proof runs: the child is killed, nothing is written
        started = time.monotonic()
        with pytest.raises(ProofCanceled):
            prover.prove(
                tiny.bundle.root,
                _values(tiny.sample),
                cancel=lambda: time.monotonic() - started > 0.3,
            )
        assert time.monotonic() - started < 5
        assert not _alive(child)
        # the next proof starts a fresh child
        again = prover.prove(tiny.bundle.root, _values(tiny.sample), cancel=lambda: False)
        assert prover._proc.pid != child and again.outputs == made.outputs
    finally:
        prover.close()


def test_an_input_the_model_cannot_take_is_reported_unsupported_not_retryable(
    tiny: Compiled,
) -> None:
    prover = ProverProcess()
    try:
        with pytest.raises(ProofFailed) as caught:
            prover.prove(tiny.bundle.root, [[0.1, 0.2]], cancel=lambda: False)
        assert caught.value.reason is FailureReason.UNSUPPORTED
        assert caught.value.retryable is False
        assert "3" in str(caught.value)  # names the expected shape
    finally:
        prover.close()


def test_the_child_exits_when_the_worker_is_killed_with_kill_9(tiny: Compiled) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from prover.worker.child import ProverProcess
        p = ProverProcess()
        p.start()
        print(p._proc.pid, flush=True)
        p.prove(Path({str(tiny.bundle.root)!r}), {_values(tiny.sample)!r}, cancel=lambda: False)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(1.0)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child), "the proving child outlived its worker"
