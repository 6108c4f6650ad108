#!/usr/bin/env python3
"""Verify zkinfer proofs in CI: the GitHub Action's step and the entry point for other CI systems.

Runs ``zkinfer verify PROOFS... --bundle DIR --json [--junit FILE]``, reads its JSON Lines and
exits with its exit code (0 every proof valid, 1 any invalid, 2 usage error, 3 artifact or
environment error). It prints one line per proof on stdout and, on GitHub Actions:

- appends a Markdown table to ``$GITHUB_STEP_SUMMARY``,
- writes ``valid=true|false``, ``total``, ``invalid``, ``errors`` and ``junit`` to
  ``$GITHUB_OUTPUT``,
- prints an ``::error`` annotation per invalid or unchecked proof (``::warning`` for a dev SRS).

Proof paths, reasons and zkinfer's own messages are untrusted (a file name or a claim inside a
proof can hold a newline and a workflow command): every one is printed on a single line with its
control characters escaped and ``##[`` broken up, each line zkinfer writes to stderr is passed on
the same way, and on GitHub everything before the annotations is printed between
``::stop-commands::`` and its resume token.

Settings come from command-line options or, for the action, environment variables (the action
passes its inputs through ``env:``, never into the shell): ``INPUT_PROOFS`` (one path or glob per
line, or several separated by spaces on one line), ``INPUT_BUNDLE``, ``INPUT_BUNDLE_DIGEST``,
``INPUT_RPC_URL``, ``INPUT_VERIFIER``, ``INPUT_JUNIT``. ``ZKINFER`` overrides the command
(default: ``python -P -m prover`` with this interpreter when zkinfer is installed for it, else
``zkinfer`` on ``PATH``). Standard library only, so it runs and is tested without the action.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

EXIT_ENVIRONMENT = 3
INSTALL_HINT = 'install it with: pip install "zkinfer[verify] @ git+<repository URL>"'


@dataclass
class Run:
    """What one ``zkinfer verify`` run reported."""

    code: int
    proofs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    error: str = ""  # why the run stopped before any verdict

    @property
    def counts(self) -> dict[str, int]:
        """Totals from the per-proof records (a single-proof run prints no summary line)."""
        valid = sum(1 for p in self.proofs if p.get("valid") is True)
        errors = sum(1 for p in self.proofs if p.get("ok") is False)
        return {
            "total": len(self.proofs),
            "valid": valid,
            "invalid": len(self.proofs) - valid - errors,
            "errors": errors,
        }

    @property
    def all_valid(self) -> bool:
        """True only for a clean exit with at least one proof, every one valid."""
        counts = self.counts
        return self.code == 0 and counts["total"] > 0 and counts["valid"] == counts["total"]


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def log_safe(text: str) -> str:
    """Untrusted text for one log line: control characters (newline, carriage return, escape
    sequences) written as ``\\xNN``/``\\uNNNN``, and ``##[`` (the runner's older command
    prefix, recognised anywhere in a line) broken up, so that it can neither start a line of its
    own nor be read as a workflow command."""
    escaped = _CONTROL.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text
    )
    return escaped.replace("##[", "#\\x23[")


def log_line(line: str) -> str:
    """A whole line of another program's output, made safe like :func:`log_safe`; a line that
    would begin with ``::`` (a workflow command, leading blanks ignored) gets a prefix."""
    safe = log_safe(line)
    return "zkinfer: " + safe if safe.lstrip().startswith("::") else safe


# GitHub workflow commands: https://docs.github.com/actions/reference/workflow-commands-for-github-actions
def escape_data(text: str) -> str:
    """Escape an annotation message: ``%``, carriage return and newline."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape an annotation property (``file=``, ``title=``): also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, *, title: str, file: str | None = None) -> str:
    """One ``::error``/``::warning`` workflow command line (the escapes GitHub decodes first,
    then :func:`log_safe` for any other control character)."""
    props = [f"file={log_safe(escape_property(file))}"] if file else []
    props.append(f"title={escape_property(title)}")
    return f"::{level} {','.join(props)}::{log_safe(escape_data(message))}"


def markdown_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no markup, no HTML, no cell break."""
    out = []
    for ch in log_safe(" ".join(text.split())):
        if ch == "&":
            out.append("&amp;")
        elif ch in "\\`*_{}[]()<>#+!|~":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def split_proofs(value: str) -> list[str]:
    """Proof arguments from the ``proofs`` input: one per line, or space-separated on one line."""
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    return lines[0].split() if len(lines) == 1 else lines


def zkinfer_command(env: Mapping[str, str]) -> list[str]:
    """The command that runs the CLI (see the module docstring)."""
    if env.get("ZKINFER"):
        return shlex.split(env["ZKINFER"])
    if importlib.util.find_spec("prover.cli") is not None:
        # -P: never import a ``prover/`` folder of the checked-out workspace instead of the install
        return [sys.executable, "-P", "-m", "prover"]
    found = shutil.which("zkinfer")
    if found is None:
        raise FileNotFoundError(f"zkinfer is not installed for {sys.executable}; {INSTALL_HINT}")
    return [found]


def run_zkinfer(command: Sequence[str], args: argparse.Namespace) -> Run:
    """Run ``zkinfer verify`` (stderr, its progress, passes through) and parse its JSON Lines."""
    argv = [*command, "verify", "--bundle", args.bundle, "--json"]
    for option, value in (
        ("--bundle-digest", args.bundle_digest),
        ("--junit", args.junit),
        # the on-chain mode: passed only when asked for, so local runs need no chain options
        ("--rpc-url", args.rpc_url),
        ("--verifier", args.verifier),
    ):
        if value:
            argv += [option, value]
    argv += ["--", *args.proofs]  # a proof path starting with "-" stays a path
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    assert proc.stdout is not None and proc.stderr is not None  # both are pipes
    relay = threading.Thread(target=_relay, args=(proc.stderr, sys.stderr), daemon=True)
    relay.start()
    stdout = proc.stdout.read()
    run = Run(proc.wait())
    relay.join()
    for line in stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        if "summary" in doc:
            run.summary = doc["summary"]
        elif "proof" in doc:
            run.proofs.append(doc)
        elif doc.get("ok") is False:
            run.error = str(doc.get("error", {}).get("message", doc))
    if run.code != 0 and not run.proofs and not run.error:
        run.error = f"zkinfer verify exited with {run.code} without a result"
    return run


def _relay(source: IO[str], sink: IO[str]) -> None:
    """Pass zkinfer's stderr (its progress) on as it comes, each line made log-safe."""
    for line in source:
        sink.write(log_line(line.rstrip("\r\n")) + "\n")
        sink.flush()


def _reason(proof: dict[str, Any]) -> str:
    if proof.get("ok") is False:
        message = str(proof.get("error", {}).get("message", ""))
        return message.removeprefix(f"{proof['proof']}: ")  # the file is named beside it
    return str(proof.get("reason", ""))


def _outputs(groups: list[list[float]]) -> str:
    return "; ".join("[" + ", ".join(f"{v:.4f}" for v in g) + "]" for g in groups)


def _verdict(proof: dict[str, Any]) -> str:
    if proof.get("ok") is False:
        return "error"
    return "valid" if proof.get("valid") is True else "invalid"


def _warnings(run: Run) -> list[str]:
    if run.summary is not None:
        return [str(w) for w in run.summary.get("warnings", [])]
    return sorted({str(w) for p in run.proofs for w in p.get("warnings", [])})


def report_lines(run: Run) -> list[str]:
    """Plain text for the log: one line per proof and a totals line."""
    lines = []
    for p in run.proofs:
        reason = log_safe(_reason(p))
        path = log_safe(str(p["proof"]))
        lines.append(f"{_verdict(p).upper():8} {path}" + (f": {reason}" if reason else ""))
    if run.error:
        lines.append(f"ERROR    {log_safe(run.error)}")
    c = run.counts
    lines.append(
        f"{c['valid']} of {c['total']} proofs valid ({c['invalid']} invalid, "
        f"{c['errors']} not checked); exit {run.code}"
    )
    return lines


def github_annotations(run: Run) -> list[str]:
    """Workflow commands that mark each failure (and a dev SRS) in the GitHub UI."""
    out = []
    for p in run.proofs:
        verdict = _verdict(p)
        if verdict != "valid":
            title = (
                "zkinfer: invalid proof" if verdict == "invalid" else "zkinfer: proof not checked"
            )
            out.append(annotation("error", _reason(p), title=title, file=str(p["proof"])))
    if run.error:
        out.append(annotation("error", run.error, title="zkinfer verify failed"))
    out += [annotation("warning", w, title="zkinfer: development SRS") for w in _warnings(run)]
    return out


def summary_markdown(run: Run, bundle: str) -> str:
    """The job summary: a headline and a table with one row per proof."""
    c = run.counts
    icon = "✅" if run.all_valid else "❌"
    lines = [
        f"### {icon} zkinfer verify: {c['valid']} of {c['total']} proofs valid",
        "",
        f"Bundle: {markdown_cell(bundle)}",
    ]
    if run.summary is not None:
        lines[-1] += f" · model {markdown_cell(str(run.summary.get('model_id', ''))[:16])}…"
        lines[-1] += f" · SRS {markdown_cell(str(run.summary.get('srs_provenance', '')))}"
    lines.append("")
    if run.error:
        lines += [f"**Error:** {markdown_cell(run.error)}", ""]
    if run.proofs:
        lines += ["| proof | verdict | detail |", "|---|---|---|"]
        marks = {"valid": "✅ valid", "invalid": "❌ invalid", "error": "⚠️ not checked"}
        for p in run.proofs:
            verdict = _verdict(p)
            detail = _reason(p)
            if verdict == "valid" and p.get("outputs") is not None:
                detail = "outputs " + _outputs(p["outputs"])
            lines.append(
                f"| {markdown_cell(str(p['proof']))} | {marks[verdict]} | {markdown_cell(detail)} |"
            )
        lines.append("")
    lines += [f"> warning: {markdown_cell(w)}" for w in _warnings(run)]
    return "\n".join(lines) + "\n"


def github_outputs(run: Run, junit: str | None) -> str:
    """``name=value`` lines for ``$GITHUB_OUTPUT`` (all single-line values)."""
    c = run.counts
    pairs = {
        "valid": "true" if run.all_valid else "false",
        "total": c["total"],
        "invalid": c["invalid"],
        "errors": c["errors"],
        "exit-code": run.code,
        "junit": junit if junit and Path(junit).is_file() else "",
    }
    return "".join(f"{k}={v}\n" for k, v in pairs.items())


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    """Options, each defaulting to the environment variable the action sets."""
    parser = argparse.ArgumentParser(
        description="Verify zkinfer proofs in CI (see docs/ci.md). Options default to the "
        "INPUT_* environment variables that the GitHub Action sets."
    )
    parser.add_argument(
        "proofs",
        nargs="*",
        help="proof files, folders or quoted glob patterns (default: $INPUT_PROOFS)",
    )
    for name, help_text in (
        ("bundle", "the bundle folder"),
        ("bundle-digest", "pin the bundle's digest"),
        ("junit", "write a JUnit XML report here"),
        ("rpc-url", "on-chain mode: JSON-RPC endpoint"),
        ("verifier", "on-chain mode: verifier contract address"),
    ):
        var = "INPUT_" + name.upper().replace("-", "_")
        parser.add_argument(
            f"--{name}", default=env.get(var) or None, help=f"{help_text} (default: ${var})"
        )
    args = parser.parse_args(list(argv))
    if not args.proofs:
        args.proofs = split_proofs(env.get("INPUT_PROOFS", ""))
    if not args.proofs:
        parser.error("no proofs: pass them as arguments or set INPUT_PROOFS")
    if not args.bundle:
        parser.error("no bundle: pass --bundle DIR or set INPUT_BUNDLE")
    if args.junit is None and env.get("GITHUB_ACTIONS") == "true" and env.get("RUNNER_TEMP"):
        args.junit = str(Path(env["RUNNER_TEMP"]) / "zkinfer-verify.xml")
    return args


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the check and report it; returns the exit code of ``zkinfer verify``."""
    env = os.environ if env is None else env
    args = parse_args(sys.argv[1:] if argv is None else argv, env)
    github = env.get("GITHUB_ACTIONS") == "true"
    # Until the token is printed again the runner acts on no workflow command in the log: what
    # zkinfer and the report print cannot plant one even if an escape were missed.
    token = secrets.token_hex(16)
    if github:
        print(f"::stop-commands::{token}", flush=True)
    try:
        run = run_zkinfer(zkinfer_command(env), args)
    except OSError as exc:  # zkinfer missing or not executable
        run = Run(EXIT_ENVIRONMENT, error=str(exc))
    print("\n".join(report_lines(run)), flush=True)
    if github:
        print(f"::{token}::", flush=True)
        print("\n".join(github_annotations(run)), flush=True)
    _append(env.get("GITHUB_STEP_SUMMARY"), summary_markdown(run, args.bundle))
    _append(env.get("GITHUB_OUTPUT"), github_outputs(run, args.junit))
    return run.code


if __name__ == "__main__":
    sys.exit(main())
