"""Rendering of a many-proof ``zkinfer verify`` run.

With ``--json``, stdout carries JSON Lines: one object per proof as soon as its verdict is known
(the single-proof ``--json`` object, or ``{"ok": false, "proof": ..., "error": ...}`` when the
proof could not be checked), then one ``{"summary": {...}}`` line. Without it, stdout stays empty
and stderr gets one line per proof and a totals line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.markup import escape

from prover.cli.junit import write_junit_error
from prover.cli.output import format_outputs, json_line, stderr_console
from prover.core.verify_many import ProofOutcome, VerifyReport

__all__ = ["junit_on_error", "outcome_printer", "print_summary"]

_LABELS = {
    "valid": "[bold green]VALID[/bold green]  ",
    "invalid": "[bold red]INVALID[/bold red]",
    "error": "[bold red]ERROR[/bold red]  ",
}


def outcome_printer(as_json: bool) -> Callable[[ProofOutcome], None]:
    """A callback that prints each proof's outcome as soon as it is known."""

    def show(outcome: ProofOutcome) -> None:
        if as_json:
            json_line(outcome.to_json())
            return
        line = f"{_LABELS[outcome.status]} {escape(str(outcome.proof_path))}"
        if outcome.message:
            line += f": {escape(outcome.message)}"
        elif outcome.result is not None and outcome.result.outputs is not None:
            line += "  outputs " + format_outputs(outcome.result.outputs)
        stderr_console().print(line)

    return show


def print_summary(report: VerifyReport, as_json: bool) -> None:
    """The closing line: the ``summary`` JSON record, or totals and warnings on stderr."""
    if as_json:
        json_line({"summary": report.summary()})
        return
    c = stderr_console()
    total, valid = len(report.outcomes), report.count("valid")
    style = "green" if report.exit_code == 0 else "red"
    c.print(
        f"[{style}]{valid} of {total} proofs valid[/{style}] for model {report.model_id[:16]}… "
        f"({report.count('invalid')} invalid, {report.count('error')} not checked)"
    )
    for w in report.warnings:
        c.print(f"[yellow]warning: {escape(w)}[/yellow]")


@contextmanager
def junit_on_error(junit: Path | None, bundle: Path) -> Iterator[None]:
    """Write a JUnit report naming the error when the run stops before any verdict."""
    try:
        yield
    except Exception as exc:
        if junit is not None:
            write_junit_error(junit, bundle, exc)
        raise
