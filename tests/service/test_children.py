"""The child processes the service starts: one runner (memory limit, timeout, kill on cancel,
stderr tail, JSON in and out) for the compiler and for the long-lived verifier."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prover.service.children import ChildFailed, ChildTimeout, JsonLineChild, run_once
from prover.service.compiler import CompileJob, compile_in_subprocess
from prover.service.verifier import Verifier, VerifierUnavailable
from tests.conftest import Compiled
from tests.helpers import model_files

GIB = 1024**3
#: A child that answers each line with the same JSON, exits on "exit" and dies on "abort".
ECHO = (
    "import json, os, sys\n"
    "for line in sys.stdin:\n"
    "    doc = json.loads(line)\n"
    "    if doc == 'abort': print('the echo child gives up', file=sys.stderr, flush=True); "
    "os.abort()\n"
    "    if doc == 'sleep': import time; time.sleep(60)\n"
    "    print(json.dumps(doc), flush=True)\n"
)


VERIFY_CHILD = "prover.service.verify_child"


def _running(marker: str) -> list[int]:
    """This process's children whose command line mentions ``marker`` (zombies excluded), less
    those that ran before the test (the session's API keeps verifier children of its own)."""
    return [pid for pid in _all_running(marker) if pid not in _BEFORE.get(marker, set())]


_BEFORE: dict[str, set[int]] = {}


@pytest.fixture(autouse=True)
def _others_children() -> Iterator[None]:
    _BEFORE.clear()
    _BEFORE.update({VERIFY_CHILD: set(_all_running(VERIFY_CHILD))})
    yield
    _BEFORE.clear()


def _all_running(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if marker in cmdline and parent == os.getpid():
            found.append(int(proc.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_run_once_reads_the_json_a_command_prints() -> None:
    code = "import json, sys; print(json.dumps({'ok': True})); print('detail', file=sys.stderr)"
    done = asyncio.run(
        run_once([sys.executable, "-c", code], memory_bytes=GIB, timeout_s=30, what="x")
    )
    assert done.returncode == 0 and done.doc == {"ok": True} and done.stderr_tail == "detail"


def test_run_once_limits_memory_and_time() -> None:
    hog = [sys.executable, "-c", "x = bytearray(1 << 30)"]
    done = asyncio.run(run_once(hog, memory_bytes=256 * 1024**2, timeout_s=30, what="the hog"))
    assert done.returncode == 1 and done.doc is None and "MemoryError" in done.stderr_tail

    sleeper = [sys.executable, "-c", "import time; time.sleep(60)  # sleeper-marker"]
    with pytest.raises(ChildTimeout, match=r"the sleeper took longer than 0.5s"):
        asyncio.run(run_once(sleeper, memory_bytes=GIB, timeout_s=0.5, what="the sleeper"))
    assert _running("sleeper-marker") == []


def test_a_json_line_child_is_reused_and_restarted_after_a_crash_or_a_timeout() -> None:
    child = JsonLineChild([sys.executable, "-c", ECHO], memory_bytes=GIB, what="the echo child")

    async def scenario() -> None:
        assert await child.ask({"n": 1}, 30) == {"n": 1}
        first = child.pid
        assert await child.ask([1, 2], 30) == [1, 2] and child.pid == first  # the same process
        with pytest.raises(ChildFailed, match=r"killed by SIGABRT.*: the echo child gives up"):
            await child.ask("abort", 30)
        assert first is not None and not _alive(first)
        assert await child.ask({"n": 2}, 30) == {"n": 2}  # a fresh child
        second = child.pid
        with pytest.raises(ChildTimeout, match=r"took longer than 0.3s"):
            await child.ask("sleep", 0.3)
        assert second is not None and not _alive(second)
        assert await child.ask({"n": 3}, 30) == {"n": 3}

    try:
        asyncio.run(scenario())
    finally:
        child.close()
    assert child.pid is None


@pytest.mark.slow
def test_a_cancelled_compile_kills_its_child(tmp_path: Path) -> None:
    network, inp, calibration = model_files("breast_cancer_mlp")
    out = tmp_path / "bundle-of-a-cancelled-compile"
    job = CompileJob(network, inp, calibration, out, dev_srs=True)

    async def scenario() -> None:
        task = asyncio.create_task(compile_in_subprocess(job, memory_bytes=8 * GIB, timeout_s=600))
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


def _proof(c: Compiled) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(c.proof.read_text())
    return doc


def _values(c: Compiled) -> list[list[float]]:
    values: list[list[float]] = json.loads(c.sample.read_text())["input_data"]
    return values


@pytest.mark.slow
def test_one_verifier_child_serves_many_verifications(mlp: Compiled) -> None:
    proof, values = _proof(mlp), _values(mlp)

    async def scenario(verifier: Verifier) -> None:
        verdict = await verifier.verify(mlp.bundle.root, proof, values=values, timeout_s=120)
        assert verdict.valid and verdict.outputs == proof["zkinfer"]["outputs"]
        (child,) = _running(VERIFY_CHILD)
        other = [[v + 0.5 for v in values[0]]]
        wrong = await verifier.verify(mlp.bundle.root, proof, values=other, timeout_s=60)
        assert not wrong.valid and wrong.outputs is None
        assert wrong.reason == "the proof is not about the input given"
        pinned = await verifier.verify(
            mlp.bundle.root, proof, bundle_digest=mlp.bundle.digest, timeout_s=60
        )
        assert pinned.valid
        with pytest.raises(VerifierUnavailable, match="InputError"):
            await verifier.verify(mlp.bundle.root, proof, values=[[1.0]], timeout_s=60)
        assert _running(VERIFY_CHILD) == [child]  # no new process for any of them

    with Verifier(memory_bytes=4 * GIB) as verifier:
        asyncio.run(scenario(verifier))
    assert _running(VERIFY_CHILD) == []


@pytest.mark.slow
def test_a_verifier_crash_or_timeout_is_unavailable_and_the_next_one_restarts(
    mlp: Compiled, tmp_path: Path
) -> None:
    proof, values = _proof(mlp), _values(mlp)
    bundle = tmp_path / "bundle"
    shutil.copytree(mlp.bundle.root, bundle)

    async def scenario(verifier: Verifier) -> None:
        assert (await verifier.verify(bundle, proof, values=values, timeout_s=120)).valid
        (first,) = _running(VERIFY_CHILD)
        os.kill(first, signal.SIGKILL)  # died while idle (the kernel's out-of-memory killer)
        while _alive(first):
            await asyncio.sleep(0.01)
        assert (await verifier.verify(bundle, proof, values=values, timeout_s=120)).valid
        (second,) = _running(VERIFY_CHILD)
        assert second != first
        with pytest.raises(VerifierUnavailable, match="took longer than"):
            await verifier.verify(bundle, proof, values=values, timeout_s=0.001)
        assert not _alive(second)
        assert (await verifier.verify(bundle, proof, values=values, timeout_s=120)).valid
        key = (bundle / "vk.key").read_bytes()
        (bundle / "vk.key").write_bytes(key[:-1] + bytes([key[-1] ^ 1]))
        with pytest.raises(VerifierUnavailable, match=r"ArtifactError.*digest mismatch"):
            await verifier.verify(bundle, proof, values=values, timeout_s=120)

    with Verifier(memory_bytes=4 * GIB) as verifier:
        asyncio.run(scenario(verifier))


@pytest.mark.slow
def test_the_verifier_memory_limit_holds(mlp: Compiled) -> None:
    async def scenario() -> None:
        with (
            # 64 MiB once failed here; a verify child that imports neither numpy nor onnx now
            # verifies the MLP within it, and fails at 32 MiB (abort) or 24 (MemoryError, killed)
            Verifier(memory_bytes=24 * 1024**2) as verifier,
            pytest.raises(
                VerifierUnavailable,
                match=r"memory limit 24 MiB|exited with 1: .*(MemoryError|Memory allocation)",
            ),
        ):
            await verifier.verify(mlp.bundle.root, _proof(mlp), timeout_s=120)

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_cancelled_verification_kills_its_child(mlp: Compiled) -> None:
    proof = _proof(mlp)

    async def scenario(verifier: Verifier) -> None:
        assert (await verifier.verify(mlp.bundle.root, proof, timeout_s=120)).valid  # warm
        (child,) = _running(VERIFY_CHILD)
        task = asyncio.create_task(verifier.verify(mlp.bundle.root, proof, timeout_s=60))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # SIGKILL was sent; give the kernel a moment
            if not _alive(child):
                break
            await asyncio.sleep(0.05)
        assert not _alive(child)

    with Verifier(memory_bytes=4 * GIB) as verifier:
        asyncio.run(scenario(verifier))
    assert _running(VERIFY_CHILD) == []
