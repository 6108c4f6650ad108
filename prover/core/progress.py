"""Progress reporting for long pipeline steps, without tying the core to any UI library."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["NullProgress", "Progress", "StepTimer"]


class Progress(Protocol):
    """Receives the start and end of each named step; the CLI renders them on stderr."""

    def start(self, step: str, detail: str = "") -> None: ...

    def done(self, step: str, seconds: float) -> None: ...

    def note(self, message: str) -> None: ...

    def failed(self, step: str) -> None: ...


class NullProgress:
    """A progress sink that shows nothing (the default for the Python API)."""

    def start(self, step: str, detail: str = "") -> None:
        pass

    def done(self, step: str, seconds: float) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def failed(self, step: str) -> None:
        pass


class StepTimer:
    """Times named steps, reports them to a :class:`Progress`, and keeps the timings."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress: Progress = progress or NullProgress()
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[None]:
        """Time the enclosed block as step ``name``; report its start, end or failure."""
        self.progress.start(name, detail)
        t0 = time.perf_counter()
        try:
            yield
        except BaseException:
            self.progress.failed(name)
            raise
        elapsed = round(time.perf_counter() - t0, 3)
        self.timings[name] = round(self.timings.get(name, 0.0) + elapsed, 3)
        self.progress.done(name, elapsed)
