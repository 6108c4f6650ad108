"""The service's own check of a proof, always in a child process.

ezkl redirects the process's file descriptors while it runs and a Rust panic can abort the whole
process, so neither the API nor the queue worker calls it in-process: a :class:`Verifier` keeps
long-lived ``python -m prover.service.verify_child`` processes (one per concurrent verification,
reused for many), sends each the proof document and the input values as one JSON line and reads
a typed :class:`Verdict` back. A verdict is about the proof; a crash, a timeout, the memory limit
or a bundle the child cannot use is the verifier's failure (:class:`VerifierUnavailable`), never
the provider's.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prover.service.children import ChildFailed, JsonLineChild

__all__ = ["Verdict", "Verifier", "VerifierUnavailable", "VerifyRequest"]


class VerifierUnavailable(RuntimeError):
    """The verifier process crashed, timed out or answered nonsense: no verdict was reached."""


@dataclass(frozen=True)
class VerifyRequest:
    """What the verifier child is asked: a proof document, and optionally the input it must be
    about, for the bundle at ``bundle_dir`` (pinned by ``bundle_digest``). For a batch proof,
    ``values`` is the whole batch's input (every request's and the padding) and ``slots`` the
    slots whose outputs the verdict must carry."""

    bundle_dir: str
    proof: Any
    bundle_digest: str | None = None
    values: list[list[float]] | None = None
    slots: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        """The request line."""
        return {
            "bundle_dir": self.bundle_dir,
            "bundle_digest": self.bundle_digest,
            "proof": self.proof,
            "values": self.values,
            "slots": self.slots,
        }

    @classmethod
    def from_json(cls, doc: Any) -> VerifyRequest:
        """Read a request line; ``ValueError`` if it is not one."""
        if not isinstance(doc, dict) or not isinstance(doc.get("bundle_dir"), str):
            raise ValueError('a request is an object with "bundle_dir", "proof" and "values"')
        slots = doc.get("slots")
        if slots is not None and not (
            isinstance(slots, list) and all(type(s) is int and s >= 0 for s in slots)
        ):
            raise ValueError('"slots" is a list of slot numbers')
        return cls(
            doc["bundle_dir"],
            doc.get("proof"),
            doc.get("bundle_digest"),
            doc.get("values"),
            slots,
        )


@dataclass(frozen=True)
class Verdict:
    """The verdict on a proof; ``outputs`` (decoded from verified instances) only when valid,
    and then ``slot_outputs`` too when the request named slots (one entry per slot named)."""

    valid: bool
    reason: str
    outputs: list[list[float]] | None
    timings: dict[str, float] = field(default_factory=dict)
    slot_outputs: list[list[list[float]] | None] | None = None

    def to_json(self) -> dict[str, Any]:
        """The answer line."""
        return {
            "valid": self.valid,
            "reason": self.reason,
            "outputs": self.outputs,
            "timings": self.timings,
            "slot_outputs": self.slot_outputs,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Verdict:
        """Read an answer line; :class:`VerifierUnavailable` for an error or anything else."""
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            error = doc["error"]
            raise VerifierUnavailable(
                f"the verifier could not check the proof ({error.get('kind')}): "
                f"{error.get('message')}"
            )
        if not isinstance(doc, dict) or not isinstance(doc.get("valid"), bool):
            raise VerifierUnavailable("the verifier answered something that is not a verdict")
        valid = doc["valid"]
        return cls(
            valid=valid,
            reason="" if valid else str(doc.get("reason") or "the proof does not verify"),
            outputs=doc.get("outputs") if valid else None,
            timings=dict(doc.get("timings") or {}),
            slot_outputs=doc.get("slot_outputs") if valid else None,
        )


class Verifier:
    """Verifier children for one service process: started once, reused, restarted after a
    crash or a timeout; one child per concurrent verification, at most ``keep`` kept idle."""

    def __init__(self, *, memory_bytes: int, keep: int = 2) -> None:
        self.memory_bytes = memory_bytes
        self.keep = keep
        self._idle: list[JsonLineChild] = []
        self._lock = threading.Lock()

    def _child(self) -> JsonLineChild:
        return JsonLineChild(
            [sys.executable, "-m", "prover.service.verify_child"],
            memory_bytes=self.memory_bytes,
            what="the verifier",
        )

    def start(self) -> None:
        """Start one child now, so that the first verification does not wait for its imports."""
        child = self._take()
        child.start()
        self._give_back(child)

    def _take(self) -> JsonLineChild:
        with self._lock:
            return self._idle.pop() if self._idle else self._child()

    def _give_back(self, child: JsonLineChild) -> None:
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(child)
                return
        child.close()

    async def verify(
        self,
        bundle_dir: Path,
        proof: Any,
        *,
        bundle_digest: str | None = None,
        values: list[list[float]] | None = None,
        slots: list[int] | None = None,
        timeout_s: float = 120.0,
    ) -> Verdict:
        """The verdict on ``proof`` for the bundle (and, with ``values``, that input; with
        ``slots``, those slots' outputs too).

        Raises :class:`VerifierUnavailable` when no verdict was reached within ``timeout_s``.
        """
        request = VerifyRequest(str(bundle_dir), proof, bundle_digest, values, slots)
        child = self._take()
        try:
            answer = await child.ask(request.to_json(), timeout_s)
        except ChildFailed as exc:
            raise VerifierUnavailable(str(exc)) from None
        finally:
            self._give_back(child)  # a dead child restarts on its next request
        return Verdict.from_json(answer)

    def close(self) -> None:
        """Stop the idle children (each exits when its stdin closes)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
