"""Proving in a child process that the worker can kill.

ezkl cannot be interrupted inside a process, and it redirects the process's file descriptors
while it runs; so the worker proves in one long-lived child (started once, spawned, not forked,
so no thread or lock of the parent leaks into it) and kills it when a lease is lost or canceled.
The child ignores SIGINT and SIGTERM (the parent decides whether a proof is finished or
abandoned) and exits by itself when the parent dies, even by ``kill -9``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.core.progress import NullProgress, Progress
from prover.errors import (
    ArtifactError,
    InputError,
    ModelError,
    UsageError,
    ZkinferError,
)
from prover.protocol import FailureReason

__all__ = ["ProofCanceled", "ProofFailed", "ProofMade", "ProverProcess"]


@dataclass(frozen=True)
class ProofMade:
    """A proof the child made and verified (the proof document), with its proven outputs: the
    whole input's, or for a batch each slot's (``slot_outputs``, padding slots included)."""

    proof: dict[str, Any]
    outputs: list[list[float]] | None
    prove_s: float
    slot_outputs: list[list[list[float]] | None] | None = None


class ProofFailed(Exception):
    """The proof could not be made; ``reason`` and ``retryable`` go into the failure report."""

    def __init__(self, message: str, reason: FailureReason, retryable: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


class ProofCanceled(Exception):
    """The proof was abandoned (the child was killed) because the lease ended."""


def classify(exc: BaseException) -> tuple[FailureReason, bool]:
    """The failure reason and retryability the service is told for an exception in the child."""
    if isinstance(exc, MemoryError):
        return FailureReason.OUT_OF_MEMORY, True
    if isinstance(exc, InputError | ModelError | UsageError):
        return FailureReason.UNSUPPORTED, False  # the same input fails on any prover
    if isinstance(exc, ArtifactError):
        return FailureReason.INTERNAL, True  # this worker's copy of the bundle is at fault
    return FailureReason.INTERNAL, True


class _PipeProgress:
    """Forwards the core's progress events to the parent."""

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self.conn = conn

    def start(self, step: str, detail: str = "") -> None:
        self.conn.send(("progress", "start", step, detail))

    def done(self, step: str, seconds: float) -> None:
        self.conn.send(("progress", "done", step, seconds))

    def note(self, message: str) -> None:
        self.conn.send(("progress", "note", message, ""))

    def failed(self, step: str) -> None:
        self.conn.send(("progress", "failed", step, ""))


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)  # the worker died (even by kill -9): never prove for nobody
        time.sleep(0.5)


def _serve(conn: multiprocessing.connection.Connection, parent: int) -> None:
    """The child's loop: one job at a time from the pipe, one answer each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # heavy (ezkl, onnxruntime): only in the child
    from prover.core.batch import prove_batch
    from prover.core.prove import prove_values

    conn.send(("ready",))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        bundle_dir, values, slots = job
        try:
            t0 = time.perf_counter()
            progress = _PipeProgress(conn)
            per_slot = None
            if slots is None:
                result = prove_values(Path(bundle_dir), values, progress=progress)
            else:
                made = prove_batch(Path(bundle_dir), slots, progress=progress)
                result, per_slot = made, made.slot_outputs
            elapsed = round(time.perf_counter() - t0, 3)
            conn.send(("ok", result.document, result.outputs, elapsed, per_slot))
        except Exception as exc:  # every failure is reported to the service, none kills the child
            reason, retryable = classify(exc)
            kind = type(exc).__name__
            message = str(exc) if isinstance(exc, ZkinferError) else f"{kind}: {exc}"
            conn.send(("error", message[:1500], reason.value, retryable))


class ProverProcess:
    """A child process that proves one job at a time; :meth:`kill` abandons the current one."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress or NullProgress()
        self._proc: Any = None
        self._conn: multiprocessing.connection.Connection | None = None

    def start(self) -> None:
        """Start the child now (it loads ezkl), so that the first proof does not wait for it."""
        self._started()

    def _started(self) -> multiprocessing.connection.Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self.kill()
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(
            target=_serve, args=(child_end, os.getpid()), name="zkinfer-prover", daemon=True
        )
        proc.start()
        child_end.close()
        self._proc, self._conn = proc, parent_end
        return parent_end

    def prove(
        self,
        bundle_dir: Path,
        values: list[list[float]],
        *,
        cancel: Callable[[], bool],
        poll_s: float = 0.1,
    ) -> ProofMade:
        """Prove ``values`` with the bundle; the proof comes back in memory. Raises
        :class:`ProofCanceled` as soon as ``cancel()`` is true (the child is killed),
        :class:`ProofFailed` when proving failed."""
        return self._run((str(bundle_dir), values, None), cancel, poll_s)

    def prove_batch(
        self,
        bundle_dir: Path,
        slots: list[list[list[float]] | None],
        *,
        cancel: Callable[[], bool],
        poll_s: float = 0.1,
    ) -> ProofMade:
        """Prove one batch with a bundle of ``len(slots)`` slots: each slot's input, or None for
        the bundle's padding input; one proof of them all. Raises as :meth:`prove`."""
        return self._run((str(bundle_dir), None, slots), cancel, poll_s)

    def _run(
        self, job: tuple[str, Any, Any], cancel: Callable[[], bool], poll_s: float
    ) -> ProofMade:
        conn = self._started()
        conn.send(job)
        while True:
            if cancel():
                self.kill()
                raise ProofCanceled("the proof was abandoned")
            try:
                ready = conn.poll(poll_s)
                message = conn.recv() if ready else None
            except (EOFError, OSError):
                message = ("died",)
            if message is None:
                continue
            kind = message[0]
            if kind == "ready":
                continue
            if kind == "progress":
                self._relay(message[1:])
            elif kind == "ok":
                return ProofMade(message[1], message[2], float(message[3]), message[4])
            elif kind == "error":
                raise ProofFailed(message[1], FailureReason(message[2]), bool(message[3]))
            else:
                raise self._died()

    def _died(self) -> ProofFailed:
        proc = self._proc
        if proc is not None:
            proc.join(timeout=5)
        code = None if proc is None else proc.exitcode
        self._proc, self._conn = None, None
        if code == -signal.SIGKILL:  # most often the kernel's out-of-memory killer
            return ProofFailed(
                "the prover process was killed (SIGKILL; most likely out of memory)",
                FailureReason.OUT_OF_MEMORY,
                True,
            )
        return ProofFailed(
            f"the prover process died (exit code {code})", FailureReason.INTERNAL, True
        )

    def _relay(self, event: tuple[Any, ...]) -> None:
        what, a, b = event
        if what == "start":
            self.progress.start(a, b)
        elif what == "done":
            self.progress.done(a, float(b))
        elif what == "note":
            self.progress.note(a)
        else:
            self.progress.failed(a)

    def kill(self) -> None:
        """Kill the child now (a later :meth:`prove` starts a fresh one)."""
        proc, conn = self._proc, self._conn
        self._proc, self._conn = None, None
        if conn is not None:
            conn.close()
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join(timeout=10)

    def close(self) -> None:
        self.kill()
