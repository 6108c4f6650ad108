"""Errors carry the parameter at fault and a hint; only the CLI words them as flags, only the
HTTP layer as fields of a problem document."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient

from prover import CompileOptions
from prover.cli.app import app as cli_app
from prover.cli.output import flag
from prover.errors import SrsError, UsageError
from prover.service.problems import install_problem_handlers
from tests.helpers import compile_args, zkinfer

ROOT = Path(__file__).resolve().parents[1]
#: The layers every front end shares: their messages must not speak CLI.
SHARED_LAYERS = [ROOT / "prover" / "core", ROOT / "prover" / "chain"]
_FLAG = re.compile(r"--[a-z]")
_ARGV_TOKEN = re.compile(r"--[a-z][a-z0-9-]*")  # one argument handed to a tool (solc, anvil)
_HINT_FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def flag_texts(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string in ``source`` that names a command-line flag: constants and
    the literal parts of f-strings, docstrings and lone tool arguments (``"--port"``) aside."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and _FLAG.search(node.value)
        and not _ARGV_TOKEN.fullmatch(node.value)
    ]


def _modules() -> Iterator[Path]:
    for layer in SHARED_LAYERS:
        yield from sorted(layer.rglob("*.py"))


def test_the_scan_finds_a_flag_in_a_raised_message() -> None:
    source = 'def f(out):\n    """Write ``--out``."""\n    raise E(f"--out {out} is a folder")\n'
    assert flag_texts(source) == [(3, "--out ")]
    assert flag_texts('run(["--port", str(port)])') == []


def test_core_and_chain_messages_name_no_command_line_flag() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in _modules()
        for line, text in flag_texts(path.read_text())
    ]
    assert not found, "name the field (field=..., {field} in a hint), not the flag:\n" + "\n".join(
        found
    )


def _cli_flags() -> set[str]:
    """Every option flag of every ``zkinfer`` command."""
    flags: set[str] = set()
    todo = [typer.main.get_command(cli_app)]
    while todo:
        command = todo.pop()
        for param in command.params:
            if param.param_type_name == "option":
                flags.update(param.opts + param.secondary_opts)
        todo += getattr(command, "commands", {}).values()
    return flags


def _error_fields(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, field) for every literal ``field=`` and every ``{field}`` of a ``hint=``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg == "field" and isinstance(kw.value, ast.Constant):
                if isinstance(kw.value.value, str):
                    yield node.lineno, kw.value.value
            elif kw.arg == "hint":
                for part in ast.walk(kw.value):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        yield from ((node.lineno, n) for n in _HINT_FIELD.findall(part.value))


def test_every_field_an_error_names_is_a_flag_of_the_cli() -> None:
    flags = _cli_flags()
    named = [
        (f"{path.relative_to(ROOT)}:{line}", field)
        for path in _modules()
        for line, field in _error_fields(ast.parse(path.read_text()))
    ]
    assert len(named) > 20  # the scan sees the raise sites
    # compile's visibilities are named by a computed field: f"{what}_visibility"
    named += [("compile.py", f"{what}_visibility") for what in ("input", "output", "param")]
    unknown = [
        f"{where}: {field} -> {flag(field)}" for where, field in named if flag(field) not in flags
    ]
    assert not unknown, "\n".join(unknown)


@dataclass(frozen=True)
class Case:
    """One error through every front end: compile's arguments and options that cause it, and
    how Python, the CLI and HTTP word it."""

    args: list[str]
    options: Callable[[], CompileOptions]
    field: str
    message: str
    hint: str | None
    plain: str  # str(exc)
    cli: str


CASES = [
    Case(
        ["--batch", "0"],
        lambda: CompileOptions(batch_size=0),
        "batch_size",
        "0: must be at least 1",
        None,
        "batch_size 0: must be at least 1",
        "--batch 0: must be at least 1",
    ),
    Case(
        ["--srs", "x.srs", "--dev-srs"],
        lambda: CompileOptions(srs=Path("x.srs"), dev_srs=True),
        "srs",
        "x.srs and a development SRS exclude each other",
        "pass srs or dev_srs, not both",
        "srs x.srs and a development SRS exclude each other; pass srs or dev_srs, not both",
        "--srs x.srs and a development SRS exclude each other; pass --srs or --dev-srs, not both",
    ),
]


def _problem(raising: Callable[[], None]) -> httpx.Response:
    """The problem document the service's handlers make of what ``raising`` raises."""
    api = FastAPI()
    install_problem_handlers(api)
    api.post("/check")(raising)
    response: httpx.Response = TestClient(api).post("/check")
    return response


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.field)
def test_the_cli_names_the_flag_and_python_the_parameter(tmp_path: Path, case: Case) -> None:
    with pytest.raises(UsageError) as raised:
        case.options().validate()
    exc = raised.value
    assert (exc.field, exc.message, exc.hint, str(exc)) == (
        case.field,
        case.message,
        case.hint,
        case.plain,
    )
    result = zkinfer(*compile_args("breast_cancer_mlp", tmp_path / "o", *case.args, "--json"))
    assert result.code == 2
    assert result.json["error"] == {"type": "UsageError", "message": case.cli}
    assert case.cli in " ".join(result.stderr.split())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.field)
def test_the_http_problem_names_the_field_and_the_hint(case: Case) -> None:
    r = _problem(lambda: case.options().validate())
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert (doc["field"], doc.get("hint"), doc["detail"]) == (case.field, case.hint, case.plain)
    # the shape of a request validation problem, so that clients read both the same way
    assert doc["errors"] == [{"field": case.field, "message": case.message}]
    assert "--" not in r.text


def test_an_error_without_a_field_keeps_the_problem_plain() -> None:
    def no_srs() -> None:
        raise SrsError("no SRS for logrows 15", hint="pass {srs} FILE or {dev_srs}")

    doc = _problem(no_srs).json()
    assert doc["status"] == 503 and "field" not in doc and "errors" not in doc
    assert doc["hint"] == "pass srs FILE or dev_srs"
    assert doc["detail"] == "no SRS for logrows 15; pass srs FILE or dev_srs"


def test_a_hint_names_its_fields_in_order_and_keeps_other_braces() -> None:
    exc = UsageError(
        "is missing", field="out", hint='pass {out} as {"path": ...}, or {force} then {out}'
    )
    assert exc.hint_fields == ("out", "force")
    assert (
        exc.render(flag) == '--out is missing; pass --out as {"path": ...}, or --force then --out'
    )
