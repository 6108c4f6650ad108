"""Rendering for the CLI: progress and human text on stderr, one JSON object on stdout with --json.

The console writes to a duplicate of the original stderr descriptor, so it keeps working while
the ezkl adapter temporarily points descriptors 1 and 2 at a capture file.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from prover.errors import EXIT_ENVIRONMENT, ZkinferError
from prover.settings import get_settings

__all__ = [
    "JsonOpt",
    "RichProgress",
    "command_progress",
    "emit",
    "error_text",
    "fail",
    "flag",
    "format_outputs",
    "json_line",
    "run_command",
    "stderr_console",
]

#: The ``--json`` option every command takes.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]

_console: Console | None = None


def stderr_console() -> Console:
    """A console on a private copy of stderr, created once."""
    global _console
    if _console is None:
        try:
            stream: TextIO = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
        except (AttributeError, OSError, io.UnsupportedOperation):  # stderr replaced in-process
            stream = sys.stderr
        _console = Console(file=stream, highlight=False, soft_wrap=True)
    return _console


class RichProgress:
    """Shows a spinner for the running step and a line with its time when it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None

    def start(self, step: str, detail: str = "") -> None:
        text = f"[bold]{step}[/bold]" + (f" [dim]({detail})[/dim]" if detail else "")
        if self.console.is_terminal:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self.console.print(f"… {step}" + (f" ({detail})" if detail else ""))

    def done(self, step: str, seconds: float) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self.console.print(f"[green]✓[/green] {step} [dim]{seconds:.2f}s[/dim]")

    def failed(self, step: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self.console.print(f"[red]✗[/red] {step}")

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]{escape(message)}[/yellow]")


def command_progress() -> RichProgress:
    """Progress for a command's steps, on the private stderr console."""
    return RichProgress(stderr_console())


def json_line(doc: dict[str, Any]) -> None:
    """Write one JSON object as one line on stdout, now (JSON Lines for many results)."""
    sys.stdout.write(json.dumps(doc, default=str) + "\n")
    sys.stdout.flush()


def format_outputs(groups: list[list[float]]) -> str:
    """Model outputs for people: one bracketed list per output tensor, 4 decimals."""
    return "; ".join("[" + ", ".join(f"{v:.4f}" for v in g) + "]" for g in groups)


def emit(as_json: bool, payload: dict[str, Any], human: Callable[[Console], None]) -> None:
    """Print the result: the JSON object on stdout, or the human rendering on stderr."""
    if as_json:
        json_line(payload)
    else:
        human(stderr_console())


#: The flag of each error field that the default rule (``--`` + dashed field name) misses.
_FLAGS = {
    "batch_size": "--batch",
    "bundle_dirs": "--bundle",
    "lock_duration_s": "--lock-duration",
    "max_stake_wei": "--max-stake",
    "min_lock_stake_wei": "--lock-stake",
    "reward_wei": "--reward",
}


def flag(field: str) -> str:
    """The command-line flag that sets the parameter ``field`` of an error."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def error_text(exc: BaseException) -> str:
    """An error as the command line words it: the fields it names become flags."""
    return exc.render(flag) if isinstance(exc, ZkinferError) else str(exc)


def fail(as_json: bool, exc: ZkinferError | Exception, code: int) -> NoReturn:
    """Report an error without a traceback and exit with its code."""
    kind = type(exc).__name__
    message = error_text(exc)
    stderr_console().print(f"[red]error[/red] ({kind}): {escape(message)}")
    if as_json:
        json_line({"ok": False, "error": {"type": kind, "message": message}})
    raise typer.Exit(code)


def _without_url_paths(message: str) -> str:
    """Drop URL paths and queries from a message: hosted RPC URLs carry API keys there."""
    message = re.sub(r"(https?://[^/\s'\"]+)[/?][^\s'\"]*", r"\1/…", message)
    return re.sub(r"url: /[^\s'\"]*", "url: …", message)


def _debug() -> bool:
    try:
        return get_settings().debug
    except ZkinferError:  # malformed settings: the error being reported comes first
        return False


@contextmanager
def run_command(as_json: bool) -> Iterator[None]:
    """Map every :class:`ZkinferError` to its exit code; nothing a user causes shows a traceback.

    The settings are read first, so a malformed ``ZKINFER_*`` variable is a usage error (exit 2)
    of whichever command runs, before it does anything.
    """
    try:
        get_settings()
        yield
    except ZkinferError as exc:
        fail(as_json, exc, exc.exit_code)
    except OSError as exc:  # disk full, permission denied, a dead RPC: the environment
        fail(as_json, OSError(_without_url_paths(str(exc))), EXIT_ENVIRONMENT)
    except Exception as exc:
        # A bug, not a verdict: never exit 1 (which means "invalid"); keep the traceback on demand
        if _debug():
            raise
        internal = RuntimeError(f"internal error: {exc!r} (set ZKINFER_DEBUG=1 for details)")
        fail(as_json, internal, EXIT_ENVIRONMENT)
