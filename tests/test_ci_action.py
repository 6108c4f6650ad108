"""CI: scripts/ci_verify.py run as the GitHub Action runs it, action.yml, and a light install."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import Compiled
from tests.helpers import REPO, resync_hex_proof

SCRIPT = REPO / "scripts" / "ci_verify.py"
ACTION = REPO / "action.yml"
# Never needed to verify: the export extra, scikit-learn, the HTTP service
HEAVY = ("torch", "sklearn", "fastapi", "uvicorn", "prover.export")


@dataclass(frozen=True)
class ScriptRun:
    """Exit code, stdout and the files a GitHub runner would read after the step."""

    code: int
    stdout: str
    summary: str
    outputs: dict[str, str]
    stderr: str = ""


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_verify", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ci_verify"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run_script(
    tmp_path: Path, inputs: dict[str, str], *args: str, github: bool = True
) -> ScriptRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    summary, output = tmp_path / "step-summary.md", tmp_path / "github-output"
    if github:
        env |= {
            "GITHUB_ACTIONS": "true",
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(output),
            "RUNNER_TEMP": str(tmp_path),
        }
    env |= {f"INPUT_{k}": v for k, v in inputs.items()}
    proc = subprocess.run(
        [sys.executable, SCRIPT, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    outputs = {}
    if output.exists():
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    text = summary.read_text() if summary.exists() else ""
    return ScriptRun(proc.returncode, proc.stdout, text, outputs, proc.stderr)


@pytest.fixture()
def workspace(mlp: Compiled, cnn: Compiled, tmp_path: Path) -> Path:
    """A checkout with proofs/: one valid, one tampered under an awkward name, one of the CNN."""
    proofs = tmp_path / "proofs"
    proofs.mkdir()
    shutil.copy(mlp.proof, proofs / "valid.json")
    doc = json.loads(mlp.proof.read_text())
    doc["proof"][100] ^= 0x01
    resync_hex_proof(doc)
    (proofs / "odd, name: 100%.json").write_text(json.dumps(doc))
    shutil.copy(cnn.proof, proofs / "cnn.json")
    return tmp_path


def test_action_script_reports_invalid_proofs_to_github(mlp: Compiled, workspace: Path) -> None:
    inputs = {
        "PROOFS": "proofs/valid.json\nproofs/odd, name: 100%.json\n  proofs/cnn.json\n",
        "BUNDLE": str(mlp.bundle.root),
        "BUNDLE_DIGEST": mlp.bundle.digest,
    }
    run = _run_script(workspace, inputs)
    assert run.code == 1, run.stdout
    assert (
        "::error file=proofs/odd%2C name%3A 100%25.json,title=zkinfer%3A invalid proof::"
        "Failed to run verify: [halo2]" in run.stdout
    )
    assert "::error file=proofs/cnn.json,title=zkinfer%3A invalid proof::" in run.stdout
    assert "::error file=proofs/valid.json" not in run.stdout
    assert "::warning title=zkinfer%3A development SRS::" in run.stdout
    assert "1 of 3 proofs valid (2 invalid, 0 not checked); exit 1" in run.stdout

    assert run.outputs["valid"] == "false"
    assert (run.outputs["total"], run.outputs["invalid"], run.outputs["errors"]) == ("3", "2", "0")
    rows = [line for line in run.summary.splitlines() if line.startswith("| proofs/")]
    assert rows[0].startswith("| proofs/valid.json | ✅ valid | outputs \\[-")
    assert rows[1].startswith("| proofs/odd, name: 100%.json | ❌ invalid | Failed to run verify")
    assert "\\[halo2\\]" in rows[1]  # Markdown escaped
    assert "❌ zkinfer verify: 1 of 3 proofs valid" in run.summary

    junit = Path(run.outputs["junit"])
    assert junit == workspace / "zkinfer-verify.xml"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"


def test_action_script_sets_valid_true_when_every_proof_verifies(
    mlp: Compiled, workspace: Path
) -> None:
    run = _run_script(workspace, {"PROOFS": "proofs/valid*.json", "BUNDLE": str(mlp.bundle.root)})
    assert run.code == 0, run.stdout
    assert run.outputs["valid"] == "true" and run.outputs["total"] == "1"
    assert "::error" not in run.stdout
    assert "✅ zkinfer verify: 1 of 1 proofs valid" in run.summary


def test_action_script_reports_a_missing_bundle_as_exit_3(workspace: Path) -> None:
    run = _run_script(workspace, {"PROOFS": "proofs/valid.json", "BUNDLE": "no-bundle"})
    assert run.code == 3
    assert run.outputs["valid"] == "false" and run.outputs["total"] == "0"
    assert "::error title=zkinfer verify failed::no-bundle: no such bundle folder" in run.stdout
    assert "**Error:** no-bundle: no such bundle folder" in run.summary


def test_plain_entry_point_takes_arguments_and_prints_no_workflow_commands(
    mlp: Compiled, workspace: Path
) -> None:
    run = _run_script(
        workspace,
        {},
        "--bundle",
        str(mlp.bundle.root),
        "--junit",
        "reports/zkinfer.xml",
        "proofs/valid.json",
        "proofs/cnn.json",
        github=False,
    )
    assert run.code == 1
    assert run.stdout.splitlines()[:2] == [
        "VALID    proofs/valid.json",
        'INVALID  proofs/cnn.json: malformed proof: "instances" has 74 values; this bundle\'s '
        "circuit has 32",
    ]
    assert "::" not in run.stdout and run.summary == "" and run.outputs == {}
    assert (workspace / "reports" / "zkinfer.xml").is_file()


def test_chain_options_are_passed_only_when_set(tmp_path: Path) -> None:
    fake = tmp_path / "fake_zkinfer.py"
    fake.write_text(
        "import json, sys\n"
        "print(json.dumps({'ok': False, 'error': {'message': ' '.join(sys.argv[1:])}}))\n"
        "sys.exit(3)\n"
    )
    zkinfer = f"{sys.executable} {fake}"
    module = _script()
    base = {"INPUT_PROOFS": "p.json", "INPUT_BUNDLE": "b", "ZKINFER": zkinfer}
    args = module.parse_args([], base)
    local = module.run_zkinfer(module.zkinfer_command(base), args)
    assert local.code == 3 and local.error == "verify --bundle b --json -- p.json"
    chain = base | {"INPUT_RPC_URL": "http://127.0.0.1:8545", "INPUT_VERIFIER": "0xabc"}
    run = module.run_zkinfer(module.zkinfer_command(chain), module.parse_args([], chain))
    assert run.error.endswith("--json --rpc-url http://127.0.0.1:8545 --verifier 0xabc -- p.json")


def test_a_proof_path_that_looks_like_an_option_stays_a_path(tmp_path: Path) -> None:
    module = _script()
    env = {"INPUT_PROOFS": "--rpc-url", "INPUT_BUNDLE": str(tmp_path)}
    run = module.run_zkinfer(module.zkinfer_command(env), module.parse_args([], env))
    # parsed as a proof path, so the run gets as far as the (empty) bundle: exit 3, not a
    # usage error about an option missing its value (exit 2)
    assert run.code == 3 and "is not a zkinfer bundle" in (run.error or "")


def test_workflow_command_and_markdown_escaping() -> None:
    module = _script()
    assert module.escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert module.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    line = module.annotation("error", "bad\nproof", title="t: x", file="p,1.json")
    assert line == "::error file=p%2C1.json,title=t%3A x::bad%0Aproof"
    assert module.markdown_cell("a|b <i>*x*</i>\n&") == "a\\|b \\<i\\>\\*x\\*\\</i\\> &amp;"
    assert module.split_proofs("a.json b.json") == ["a.json", "b.json"]
    assert module.split_proofs("dir/my proof.json\nb.json\n") == ["dir/my proof.json", "b.json"]


FORGED = "::notice title=zkinfer::all proofs valid"


@pytest.fixture()
def hostile(mlp: Compiled, tmp_path: Path) -> Path:
    """Proofs whose file names and claims carry line breaks and workflow commands."""
    proofs = tmp_path / "proofs"
    proofs.mkdir()
    doc = json.loads(mlp.proof.read_text())
    doc["proof"][100] ^= 0x01
    (proofs / f"a\n::stop-commands::pwned\n{FORGED}\r\x1b[2K.json").write_text(json.dumps(doc))
    (proofs / "b ##[set-output name=valid;]true.json").write_text(json.dumps(doc))
    claim = json.loads(mlp.proof.read_text())
    claim["zkinfer"]["model_id"] = "\n::error::forged"  # 16 characters: the reason quotes them
    (proofs / "c-claim.json").write_text(json.dumps(claim))
    return tmp_path


def _commands(text: str) -> list[str]:
    """The lines a GitHub runner would read as workflow commands (old and new syntax)."""
    lines = re.split(r"\r\n|\r|\n", text)
    return [line for line in lines if line.lstrip().startswith("::") or "##[" in line]


def test_hostile_proof_names_and_claims_plant_no_workflow_command(
    mlp: Compiled, hostile: Path
) -> None:
    """Issue 8: a file name or a claim with a newline planted ``::stop-commands::`` or a fake
    ``::notice::`` in the job log."""
    run = _run_script(hostile, {"PROOFS": "proofs/*.json", "BUNDLE": str(mlp.bundle.root)})
    assert run.code == 1, run.stdout + run.stderr
    stop, resume, *annotations = _commands(run.stdout)
    token = stop.removeprefix("::stop-commands::")
    assert re.fullmatch("[0-9a-f]{32}", token) and resume == f"::{token}::"
    assert run.stdout.index(stop) == 0  # before anything zkinfer or the report prints
    assert len(annotations) == 4  # three proofs not valid, one dev SRS warning
    assert all(a.startswith(("::error file=proofs/", "::warning title=")) for a in annotations)
    assert _commands(run.stderr) == []  # zkinfer's progress, relayed
    assert "pwned" in run.stdout and "forged" in run.stdout  # shown, but inert
    assert "\x1b" not in run.stdout + run.stderr and "\\x1b[2K" in run.stdout
    assert run.outputs["valid"] == "false" and run.outputs["total"] == "3"
    # in the job summary each stays inside its table row
    rows = [line for line in run.summary.splitlines() if "proofs/" in line]
    assert len(rows) == 3 and all(row.startswith("| proofs/") for row in rows)
    assert all(not line.lstrip().startswith("::") for line in run.summary.splitlines())


def test_the_plain_entry_point_escapes_hostile_names_too(mlp: Compiled, hostile: Path) -> None:
    run = _run_script(hostile, {}, "--bundle", str(mlp.bundle.root), "proofs/*.json", github=False)
    assert run.code == 1
    assert _commands(run.stdout) == [] and _commands(run.stderr) == []
    assert len(run.stdout.splitlines()) == 4  # three proofs and the totals


def test_log_safe_escapes_every_line_break_and_control_character() -> None:
    module = _script()
    for brk in ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"):
        assert len(module.log_safe(f"a{brk}::x").splitlines()) == 1
    assert module.log_safe("a\n##[add-mask]b\x1b") == "a\\x0a#\\x23[add-mask]b\\x1b"
    assert module.log_line("  ::warning::x") == "zkinfer:   ::warning::x"


def _run_blocks(text: str) -> list[str]:
    """The shell of every ``run: |`` step in a YAML file (the lines indented below it)."""
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(- )?run:\s*(.*)$", line)
        if not match:
            continue
        indent = len(match.group(1)) + (2 if match.group(2) else 0)
        body = [match.group(3)]
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append("\n".join(body))
    return blocks


def test_action_passes_inputs_through_env_never_into_the_shell() -> None:
    text = ACTION.read_text()
    assert "using: composite" in text or "using: 'composite'" in text
    blocks = _run_blocks(text)
    assert len(blocks) >= 2
    for block in blocks:
        assert "${{" not in block, block
    assert "scripts/ci_verify.py" in text
    for name in ("PROOFS", "BUNDLE", "BUNDLE_DIGEST", "RPC_URL", "VERIFIER", "JUNIT"):
        assert re.search(rf"INPUT_{name}: \$\{{\{{ inputs\.[a-z-]+ \}}\}}", text), name
    assert re.search(r"^\s+valid:\s*$", text, re.M)  # the output the issue asks for
    docs = (REPO / "docs" / "ci.md").read_text()
    for name in re.findall(r"^  ([a-z][a-z-]+):\s*$", text.split("outputs:")[0], re.M):
        assert f"`{name}`" in docs, f"action input {name} is not documented in docs/ci.md"


def test_verify_command_loads_no_heavy_module(mlp: Compiled, tmp_path: Path) -> None:
    dump = tmp_path / "modules.json"
    folder = tmp_path / "proofs"
    folder.mkdir()
    shutil.copy(mlp.proof, folder / "p.json")
    code = (
        "import atexit, json, pathlib, sys\n"
        f"out = pathlib.Path({str(dump)!r})\n"
        "atexit.register(lambda: out.write_text(json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = ['zkinfer', 'verify', {str(folder)!r}, '--bundle', "
        f"{str(mlp.bundle.root)!r}, '--junit', {str(tmp_path / 'r.xml')!r}]\n"
        "from prover.cli.app import run\n"
        "run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(dump.read_text())
    assert "prover.core.verify_many" in loaded and "ezkl" in loaded  # it did verify
    assert [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY] == []


def test_cli_module_imports_nothing_heavy_at_module_level() -> None:
    code = "import json, sys; import prover.cli.app; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(proc.stdout))
    for heavy in ("ezkl", "numpy", "onnx", "onnxruntime", "web3", *HEAVY):
        assert heavy not in loaded, heavy


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[@]", r, maxsplit=1)[0].lower() for r in requirements}


def test_verify_extra_pulls_neither_torch_nor_the_service() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    assert "verify" in extras, 'pyproject.toml needs the extra: verify = ["web3>=7.6,<9"]'
    forbidden = {"torch", "scikit-learn", "fastapi", "uvicorn"}
    assert not _requirement_names(project["dependencies"]) & forbidden
    assert not _requirement_names(extras["verify"]) & forbidden
    assert "torch" in _requirement_names(extras["export"])
