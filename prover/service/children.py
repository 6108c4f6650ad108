"""The service's child processes: spawned with a memory limit, given a deadline, killed when it
passes or when the caller is cancelled, JSON in and out, the tail of stderr kept for errors.

ezkl redirects the process's file descriptors while it runs and a Rust panic aborts the whole
process, so the service never runs it in its own processes. Two kinds of children use this
runner: :func:`run_once` runs a command to its end and reads the one JSON document it prints
(the compiler); :class:`JsonLineChild` keeps one process alive and exchanges one JSON line per
request (the verifier), so the start-up of a Python process importing the prover (ezkl, ONNX
Runtime) is paid once per service process, not once per proof.

The limit is RLIMIT_DATA (heap and private writable mappings), not RLIMIT_AS: solc-js's
WebAssembly runtime reserves far more address space than it ever touches, and an address-space
cap low enough to matter makes it fail on every model. The waiting happens in a thread, so a
child does not belong to one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ChildExit",
    "ChildFailed",
    "ChildTimeout",
    "JsonLineChild",
    "describe_exit",
    "run_once",
]

#: How much of a child's stderr an error quotes.
_TAIL_BYTES = 2000


class ChildFailed(RuntimeError):
    """The child could not start, crashed or answered something that is not JSON."""


class ChildTimeout(ChildFailed):
    """The child did not answer in time; it was killed."""


@dataclass(frozen=True)
class ChildExit:
    """How a :func:`run_once` child ended: its exit status (negative: killed by that signal),
    the JSON document it printed on stdout (``None`` if none) and the end of its stderr."""

    returncode: int
    doc: Any
    stderr_tail: str


#: Sets the limit, then becomes the command (same process id). A ``preexec_fn`` would do it
#: between fork and exec, which can deadlock in a process with threads (the API's, the queue's).
_LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_DATA, (n, n)); os.execvp(sys.argv[2], sys.argv[2:])"
)


def _spawn(
    argv: Sequence[str], memory_bytes: int, *, stdin: int
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Start ``argv`` with the limit; stderr goes to a temporary file, read back for errors."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LIMITED, str(memory_bytes), *argv],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=log,
            bufsize=0,
            env={**os.environ, "NO_COLOR": "1"},
        )
    except OSError as exc:
        log.close()
        raise ChildFailed(f"cannot start {argv[0]}: {exc}") from None
    return proc, log


def _tail(log: IO[bytes]) -> str:
    """The last line of what the child wrote on stderr (where Python puts a traceback's cause)."""
    with contextlib.suppress(OSError, ValueError):
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - _TAIL_BYTES))
        lines = log.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1].strip() if lines else ""
    return ""


def _reap(proc: subprocess.Popen[bytes]) -> int:
    """Kill the child if it still runs and wait for it; its exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    return proc.wait()


def _exiting(pid: int) -> bool:
    """Whether a child that ``poll()`` still calls running is already dead: a killed process
    with threads stays unreapable, as a zombie, until every thread is gone (Linux's /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def describe_exit(code: int, memory_bytes: int) -> str:
    """Why a child ended, in words (a signal most often means the memory limit)."""
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"was killed by {name} (memory limit {memory_bytes // 2**20} MiB, or a crash)"
    return f"exited with {code}"


async def run_once(
    argv: Sequence[str], *, memory_bytes: int, timeout_s: float, what: str
) -> ChildExit:
    """Run ``argv`` to its end with the memory limit; kill it after ``timeout_s`` (raising
    :class:`ChildTimeout` naming ``what``) or when the caller is cancelled."""
    proc, log = _spawn(argv, memory_bytes, stdin=subprocess.DEVNULL)
    with log:
        try:
            out, _ = await asyncio.to_thread(proc.communicate, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ChildTimeout(f"{what} took longer than {timeout_s:g}s") from None
        finally:  # also on cancellation (a worker shutdown): never leave the child running
            _reap(proc)
        try:
            doc = json.loads(out) if out.strip() else None
        except ValueError:
            doc = None
        return ChildExit(proc.returncode, doc, _tail(log))


class JsonLineChild:
    """A long-lived child that answers one JSON line on stdout for each JSON line on stdin.

    Started on first use (or by :meth:`start`), restarted after it crashed or was killed. One
    request at a time: concurrent callers wait for each other (use one child per concurrent
    caller). A request that takes longer than its timeout, or whose caller is cancelled, kills
    the child. The child is expected to exit when its stdin closes.
    """

    def __init__(self, argv: Sequence[str], *, memory_bytes: int, what: str) -> None:
        self.argv = list(argv)
        self.memory_bytes = memory_bytes
        self.what = what
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs."""
        proc = self._proc
        return None if proc is None or proc.poll() is not None else proc.pid

    def start(self) -> None:
        """Start the child now, so that the first request does not wait for its imports."""
        with self._lock:
            self._started()

    def _started(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is not None and proc.poll() is None and not _exiting(proc.pid):
            return proc
        self._discard()
        self._proc, self._log = _spawn(self.argv, self.memory_bytes, stdin=subprocess.PIPE)
        return self._proc

    def _discard(self) -> int | None:
        """Forget the current child (killed and reaped); its exit status."""
        proc, log = self._proc, self._log
        self._proc, self._log = None, None
        code = None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            code = _reap(proc)
        if log is not None:
            log.close()
        return code

    async def ask(self, request: Any, timeout_s: float) -> Any:
        """Send ``request``, return the child's answer (parsed JSON). Raises
        :class:`ChildTimeout` after ``timeout_s`` and :class:`ChildFailed` when the child died or
        answered nonsense; in both cases the next request starts a fresh child."""
        line = json.dumps(request).encode() + b"\n"
        try:
            return await asyncio.to_thread(self._exchange, line, timeout_s)
        except asyncio.CancelledError:  # the caller is gone: stop the work it asked for
            self.kill()
            raise

    def _exchange(self, line: bytes, timeout_s: float) -> Any:
        with self._lock:
            deadline = time.monotonic() + timeout_s
            try:
                answer = self._deliver(line, deadline)
            except TimeoutError:
                self._discard()
                raise ChildTimeout(f"{self.what} took longer than {timeout_s:g}s") from None
            if not answer:
                tail = _tail(self._log) if self._log is not None else ""
                code = self._discard()
                how = describe_exit(code if code is not None else -1, self.memory_bytes)
                raise ChildFailed(f"{self.what} {how}" + (f": {tail}" if tail else ""))
            try:
                return json.loads(answer)
            except ValueError:
                self._discard()
                raise ChildFailed(f"{self.what} answered something that is not JSON") from None

    def _deliver(self, line: bytes, deadline: float) -> bytes:
        """Send ``line`` and read the answer (``b""``: the child died). A child that died while
        idle can still look alive for a moment (a killed process with threads is reaped only
        once every thread is gone): when the request could not even be written, it never
        reached that child, so one fresh child gets it."""
        for attempt in range(2):
            proc = self._started()
            assert proc.stdin is not None and proc.stdout is not None and self._log is not None
            self._log.seek(0)  # the child shares this offset: stderr of this request only
            self._log.truncate()
            try:
                self._write_all(proc.stdin.fileno(), line, deadline)
            except BrokenPipeError:
                if attempt == 0:
                    self._discard()
                    continue
                return b""
            try:
                return self._read_line(proc.stdout.fileno(), deadline)
            except (BrokenPipeError, ConnectionResetError):
                return b""
        return b""

    @staticmethod
    def _write_all(fd: int, data: bytes, deadline: float) -> None:
        """Write ``data`` to ``fd`` (a child still importing reads it late); :class:`TimeoutError`
        at ``deadline``."""
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            _, ready, _ = select.select([], [fd], [], left)
            if ready:
                view = view[os.write(fd, view[: select.PIPE_BUF]) :]

    @staticmethod
    def _read_line(fd: int, deadline: float) -> bytes:
        """One line from ``fd`` (``b""`` at end of file); :class:`TimeoutError` at ``deadline``."""
        buffer = b""
        while not buffer.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            buffer += chunk
        return buffer

    def kill(self) -> None:
        """Kill the child now (from any thread); a waiting request sees it die."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the child: its stdin closes and it exits; killed if it is still busy after
        ``timeout_s``."""
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout_s)
        with self._lock:
            self._discard()
