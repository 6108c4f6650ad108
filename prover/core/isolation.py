"""Where ezkl's heavy steps run: a child process with a memory limit, so a crash is an error.

ezkl aborts the whole process when an allocation fails (a Rust ``abort``, SIGABRT) and a large
enough circuit can exhaust the machine's memory. Settings, calibration, circuit compilation,
witness generation, key setup and proving therefore run in a child process whose address space
is limited (``RLIMIT_AS``); if the child dies, the caller gets a :class:`CircuitError` with the
signal, the limit and the tail of ezkl's log, and its own ``finally`` blocks clean up.

The runner is a seam: :class:`ChildProcess` (the default, one child per :func:`isolated` block,
reused by every step inside it, so a command pays the start-up once), :class:`InProcess` (for
callers that isolate themselves), or any object with the same ``run`` method. A long-lived worker
can hold one :class:`ChildProcess` open across requests.

The limit is ``ZKINFER_EZKL_MEMORY_LIMIT`` (``8G``, ``512M``, bytes, or ``none``); by default the
machine's physical memory, so one step can never take more than the machine has.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from typing import IO, Any, Protocol

from prover.errors import CircuitError, ToolchainError
from prover.settings import get_settings

__all__ = [
    "MEMORY_ENV",
    "ChildProcess",
    "InProcess",
    "StepRunner",
    "current_runner",
    "isolated",
    "memory_limit",
]

MEMORY_ENV = "ZKINFER_EZKL_MEMORY_LIMIT"
_LOG_TAIL = 4000


class StepRunner(Protocol):
    """Runs one named ezkl step (see ``ezkl_backend.STEPS``) and returns its JSON-able result."""

    def run(self, step: str, kwargs: dict[str, Any]) -> Any:
        """Run ``step`` with keyword arguments; raise :class:`CircuitError` on failure."""
        ...


def memory_limit() -> int | None:
    """The address-space limit for a child in bytes, or ``None`` for no limit."""
    return get_settings().ezkl_memory_limit


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


class InProcess:
    """Runs steps in this process: no isolation (for callers that already run in a sandbox)."""

    def run(self, step: str, kwargs: dict[str, Any]) -> Any:
        """Run ``step`` here."""
        from prover.core import ezkl_backend

        return ezkl_backend.run_step(step, kwargs)


class ChildProcess:
    """One child process serving steps over a pipe until :meth:`close`; restarted after a crash.

    It serves one caller at a time: a threaded service gives each worker thread its own (the
    runner of :func:`isolated` lives in a context variable, so threads do not share it).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._proc: subprocess.Popen[bytes] | None = None
        self._requests: IO[str] | None = None
        self._responses: IO[str] | None = None
        self._log: IO[bytes] | None = None
        self._idle = True  # started but never asked to run a step

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the child now, unless one runs: it imports ezkl while the caller does other work
        (checking digests), instead of on the first step."""
        if self._proc is None:
            self._start()

    def _start(self) -> None:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        # lives as long as the child: ezkl's log, readable even after the child crashed
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prover.core.isolation",
                    str(req_r),
                    str(resp_w),
                    str(self.limit or 0),
                ],
                pass_fds=(req_r, resp_w),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
            )
        except OSError as exc:
            for fd in (req_r, req_w, resp_r, resp_w):
                os.close(fd)
            raise ToolchainError(f"cannot start a process for ezkl: {exc}") from None
        os.close(req_r)
        os.close(resp_w)
        self._requests = os.fdopen(req_w, "w")
        self._responses = os.fdopen(resp_r, "r")

    def run(self, step: str, kwargs: dict[str, Any]) -> Any:
        """Run ``step`` in the child; a dead child becomes a :class:`CircuitError`."""
        if self._proc is None:
            self._start()
        self._idle = False
        assert self._requests is not None and self._responses is not None and self._log
        start = self._log.seek(0, os.SEEK_END)
        try:
            self._requests.write(json.dumps({"step": step, "kwargs": kwargs}) + "\n")
            self._requests.flush()
            line = self._responses.readline()
        except BrokenPipeError:
            line = ""
        self._log.seek(start)
        log = self._log.read().decode("utf-8", "replace")
        if not line:
            raise self._crashed(step, log)
        reply = json.loads(line)
        if reply["ok"]:
            return reply["result"]
        from prover import errors

        kind = getattr(errors, reply["kind"], CircuitError)
        where = {"field": reply.get("field"), "hint": reply.get("hint")}
        if kind is CircuitError:
            raise CircuitError(reply["error"], log="\n".join([reply["log"], log]), **where)
        raise kind(reply["error"], **where)

    def _crashed(self, step: str, log: str) -> CircuitError:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self.close()
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        limit = f"{_gib(self.limit)} ({MEMORY_ENV})" if self.limit else "none"
        lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
        # the line that says why (a failed allocation, a panic), else the last one
        telling = [ln for ln in lines if "memory allocation" in ln or "panicked" in ln]
        last = f": {(telling or lines)[-1][:300]}" if lines else ""
        hint = (
            "the step needed more memory than allowed; the model is too large for this "
            f"machine (memory limit {limit})"
            if "memory allocation" in log or "MemoryError" in log or code == -signal.SIGKILL
            else f"memory limit {limit}"
        )
        return CircuitError(
            f"ezkl {step} crashed: its process {how}{last}; {hint}", log=log[-_LOG_TAIL:]
        )

    def close(self) -> None:
        """Stop the child (it exits when its request pipe closes) and release its files."""
        for stream in (self._requests, self._responses):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._proc is not None:
            if self._idle:  # started early but not needed (the bundle or input was refused)
                self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
        self._proc = self._requests = self._responses = self._log = None
        self._idle = True


_RUNNER: ContextVar[StepRunner | None] = ContextVar("zkinfer_step_runner", default=None)


@contextlib.contextmanager
def isolated(runner: StepRunner | None = None) -> Iterator[StepRunner]:
    """Run every ezkl step inside the block with ``runner`` (default: one new child process).

    Nested blocks reuse the outer runner unless one is passed explicitly.
    """
    outer = _RUNNER.get()
    if runner is None and outer is not None:
        yield outer
        return
    own = runner is None
    chosen: StepRunner = ChildProcess(memory_limit()) if runner is None else runner
    token = _RUNNER.set(chosen)
    try:
        yield chosen
    finally:
        _RUNNER.reset(token)
        if own and isinstance(chosen, ChildProcess):
            chosen.close()


def current_runner() -> StepRunner | None:
    """The runner of the enclosing :func:`isolated` block, if any."""
    return _RUNNER.get()


def _child_main(req_fd: int, resp_fd: int, limit: int) -> None:
    """The child: limit the address space to ``limit`` bytes (0: none), then serve one JSON
    request per line."""
    import resource

    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from prover import errors
    from prover.core import ezkl_backend

    ezkl_backend.CHILD = True  # fds 1 and 2 already go to the parent's log file
    with os.fdopen(req_fd, "r") as requests, os.fdopen(resp_fd, "w") as responses:
        for line in requests:
            request = json.loads(line)
            try:
                reply = {
                    "ok": True,
                    "result": ezkl_backend.run_step(request["step"], request["kwargs"]),
                }
            except errors.ZkinferError as exc:
                reply = {
                    "ok": False,
                    "kind": type(exc).__name__,
                    "error": exc.message,
                    "field": exc.field,
                    "hint": exc.hint_template,
                    "log": getattr(exc, "log", ""),
                }
            responses.write(json.dumps(reply) + "\n")
            responses.flush()


if __name__ == "__main__":
    _child_main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
