"""``zkinfer verify`` over many proofs: folders and globs, JSON Lines, totals, exit codes, JUnit."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from prover import prove, verify
from prover.core.verify_many import MAX_PROOFS, select_proofs
from prover.errors import UsageError
from tests.conftest import Compiled
from tests.helpers import resync_hex_proof, sample_values, write_json, zkinfer


@pytest.fixture(scope="module")
def proofs(mlp: Compiled, cnn: Compiled, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two valid MLP proofs, one tampered and one of the CNN (another model)."""
    folder = tmp_path_factory.mktemp("many") / "proofs"
    folder.mkdir()
    shutil.copy(mlp.proof, folder / "a-valid.json")
    values = sample_values("breast_cancer_mlp")
    values[0] += 0.05
    other_input = write_json(folder.parent / "other-input.json", {"input_data": [values]})
    prove(mlp.bundle.root, other_input, folder / "b-valid.json")
    doc = json.loads(mlp.proof.read_text())
    doc["proof"][100] ^= 0x01
    resync_hex_proof(doc)
    write_json(folder / "c-tampered.json", doc)
    shutil.copy(cnn.proof, folder / "d-other-model.json")
    (folder / "notes.txt").write_text("not a proof, and not *.json: never picked up")
    return folder


def _lines(stdout: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert all(isinstance(d, dict) for d in docs)
    return docs


def _junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def test_folder_with_tampered_and_foreign_proofs_exits_1_and_reports_each(
    mlp: Compiled, proofs: Path, tmp_path: Path
) -> None:
    report = tmp_path / "reports" / "verify.xml"
    result = zkinfer("verify", proofs, "--bundle", mlp.bundle.root, "--json", "--junit", report)
    assert result.code == 1, result.stderr
    *records, last = _lines(result.stdout)
    names = [Path(r["proof"]).name for r in records]
    assert names == ["a-valid.json", "b-valid.json", "c-tampered.json", "d-other-model.json"]
    verdicts = {Path(r["proof"]).name: r for r in records}
    assert verdicts["a-valid.json"]["valid"] is True and verdicts["b-valid.json"]["valid"] is True
    assert verdicts["a-valid.json"]["outputs"] != verdicts["b-valid.json"]["outputs"]
    assert "[halo2]" in verdicts["c-tampered.json"]["reason"]
    assert "this bundle's circuit has" in verdicts["d-other-model.json"]["reason"]
    assert all(r["ok"] is True and r["model_id"] == mlp.bundle.model_id for r in records)
    summary = last["summary"]
    assert {k: summary[k] for k in ("total", "valid", "invalid", "errors", "exit_code")} == {
        "total": 4,
        "valid": 2,
        "invalid": 2,
        "errors": 0,
        "exit_code": 1,
    }
    assert summary["bundle_digest"] == mlp.bundle.digest

    suite = _junit(report)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "0")
    cases = {Path(c.get("name", "")).name: c for c in suite.findall("testcase")}
    assert list(cases) == names
    assert cases["a-valid.json"].find("failure") is None
    failure = cases["c-tampered.json"].find("failure")
    assert failure is not None and "[halo2]" in failure.get("message", "")
    assert cases["d-other-model.json"].find("failure") is not None


def test_quoted_glob_of_valid_proofs_exits_0_with_a_summary(mlp: Compiled, proofs: Path) -> None:
    result = zkinfer("verify", str(proofs / "*-valid.json"), "--bundle", mlp.bundle.root, "--json")
    assert result.code == 0, result.stderr
    *records, last = _lines(result.stdout)
    assert [r["valid"] for r in records] == [True, True]
    assert last["summary"]["total"] == 2 and last["summary"]["valid"] == 2


def test_glob_matching_one_file_still_prints_json_lines(mlp: Compiled, proofs: Path) -> None:
    # the output's shape follows the command line, not the number of matches
    result = zkinfer("verify", str(proofs / "a-*.json"), "--bundle", mlp.bundle.root, "--json")
    assert result.code == 0, result.stderr
    assert [list(d) for d in _lines(result.stdout)][-1] == ["summary"]


def test_single_proof_keeps_one_json_object_and_can_write_junit(
    mlp: Compiled, tmp_path: Path
) -> None:
    report = tmp_path / "one.xml"
    result = zkinfer("verify", mlp.proof, "--bundle", mlp.bundle.root, "--json", "--junit", report)
    assert result.code == 0, result.stderr
    assert result.json["valid"] is True and "summary" not in result.json
    assert set(result.json["timings"]) == {"check bundle", "verify"}
    suite = _junit(report)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")
    case = suite.find("testcase")
    assert case is not None and case.get("name") == str(mlp.proof)


def test_missing_named_proof_among_many_is_not_checked_and_exits_3(
    mlp: Compiled, proofs: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.json"
    report = tmp_path / "r.xml"
    args: list[str | Path] = [
        "verify",
        proofs / "a-valid.json",
        missing,
        "--bundle",
        mlp.bundle.root,
    ]
    result = zkinfer(*args, "--json", "--junit", report)
    assert result.code == 3
    first, second, last = _lines(result.stdout)
    assert first["valid"] is True
    assert second["ok"] is False and second["valid"] is False
    assert second["error"] == {"type": "ArtifactError", "message": f"{missing}: no such proof file"}
    assert last["summary"]["errors"] == 1 and last["summary"]["exit_code"] == 3
    suite = _junit(report)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")


def test_missing_bundle_is_exit_3_and_the_junit_report_names_it(
    proofs: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.xml"
    result = zkinfer(
        "verify", proofs, "--bundle", tmp_path / "nowhere", "--json", "--junit", report
    )
    assert result.code == 3
    assert result.json["ok"] is False
    assert "no such bundle folder" in result.json["error"]["message"]
    suite = _junit(report)
    assert suite.get("errors") == "1"
    error = suite.find("testcase/error")
    assert error is not None and "no such bundle folder" in error.get("message", "")


def test_pinned_digest_mismatch_stops_a_many_proof_run_with_exit_3(
    mlp: Compiled, proofs: Path
) -> None:
    result = zkinfer(
        "verify", proofs, "--bundle", mlp.bundle.root, "--bundle-digest", "00" * 32, "--json"
    )
    assert result.code == 3 and "not the bundle you pinned" in result.json["error"]["message"]


@pytest.mark.parametrize("what", ["empty folder", "glob"])
def test_nothing_to_verify_is_a_usage_error_never_valid(
    mlp: Compiled, tmp_path: Path, what: str
) -> None:
    arg = str(tmp_path) if what == "empty folder" else str(tmp_path / "*.json")
    result = zkinfer("verify", arg, "--bundle", mlp.bundle.root, "--json")
    assert result.code == 2
    assert result.json["ok"] is False and "quote glob patterns" in result.json["error"]["message"]


def test_bad_input_file_is_refused_before_any_proof(
    mlp: Compiled, proofs: Path, tmp_path: Path
) -> None:
    bad = write_json(tmp_path / "in.json", {"input_data": [[0.1] * 29]})
    result = zkinfer("verify", proofs, "--bundle", mlp.bundle.root, "--input", bad, "--json")
    assert result.code == 2
    assert "has 29 values" in result.json["error"]["message"]


def test_input_option_applies_to_every_proof(mlp: Compiled, proofs: Path) -> None:
    result = zkinfer("verify", proofs, "--bundle", mlp.bundle.root, "--input", mlp.sample, "--json")
    reasons = {Path(r["proof"]).name: r["reason"] for r in _lines(result.stdout)[:-1]}
    assert reasons["a-valid.json"] == ""
    assert "not about the input" in reasons["b-valid.json"]


def test_many_proofs_without_json_print_verdicts_and_totals_on_stderr(
    mlp: Compiled, proofs: Path
) -> None:
    result = zkinfer("verify", proofs, "--bundle", mlp.bundle.root)
    assert result.code == 1
    assert result.stdout == ""
    assert "VALID   " in result.stderr and "INVALID" in result.stderr
    assert "2 of 4 proofs valid" in result.stderr and "dev-unsafe" in result.stderr


def test_help_describes_many_proofs_junit_and_json_lines() -> None:
    result = zkinfer("verify", "--help")
    assert result.code == 0
    for text in ("glob", "--junit", "JSON Lines", "exit 0 all valid"):
        assert text in result.stdout


def test_select_proofs_expands_folders_and_globs_once_each_skipping_the_bundle(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "bundle"
    (tmp_path / "p" / "deep").mkdir(parents=True)
    bundle.mkdir()
    for name in ("p/2.json", "p/1.json", "p/deep/3.json", "bundle/settings.json"):
        (tmp_path / name).write_text("{}")
    folder = select_proofs([tmp_path / "p"], exclude=bundle)
    assert folder.many and [p.name for p in folder.paths] == ["1.json", "2.json"]
    everything = select_proofs(
        [tmp_path / "p" / "2.json", str(tmp_path / "**" / "*.json")], exclude=bundle
    )
    assert [p.relative_to(tmp_path).as_posix() for p in everything.paths] == [
        "p/2.json",
        "p/1.json",
        "p/deep/3.json",
    ]
    one = select_proofs([tmp_path / "nope.json"])
    assert not one.many and one.paths == [tmp_path / "nope.json"]
    with pytest.raises(UsageError, match="outside the bundle folder"):
        select_proofs([bundle], exclude=bundle)


def test_python_verify_still_reports_bundle_and_proof_timings(mlp: Compiled) -> None:
    result = verify(mlp.proof, mlp.bundle.root)
    assert result.valid and set(result.timings) == {"check bundle", "verify"}


def _symlink_loops(root: Path) -> None:
    """Two links back to ``root`` in each of two folders: following them never ends."""
    (root / "a" / "b").mkdir(parents=True)
    for folder in (root, root / "a" / "b"):
        (folder / "up").symlink_to(root, target_is_directory=True)
        (folder / "again").symlink_to(root, target_is_directory=True)


@pytest.mark.timeout(60)
def test_a_recursive_pattern_does_not_follow_symlinked_folders(tmp_path: Path) -> None:
    """Issue 8: ``**`` followed directory symlink loops and never ended."""
    _symlink_loops(tmp_path)
    (tmp_path / "top.json").write_text("{}")
    (tmp_path / "a" / "b" / "deep.json").write_text("{}")
    found = select_proofs([str(tmp_path / "**" / "*.json")])
    assert [p.relative_to(tmp_path).as_posix() for p in found.paths] == [
        "a/b/deep.json",
        "top.json",
    ]


def test_a_selection_larger_than_the_limit_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"{i}.json").write_text("{}")
    for arg in (tmp_path, str(tmp_path / "**" / "*.json"), str(tmp_path / "*.json")):
        with pytest.raises(UsageError, match="more than 3 files"):
            select_proofs([arg], limit=3)
    assert len(select_proofs([tmp_path], limit=4).paths) == 4
    named = [tmp_path / f"{i}.json" for i in range(2)]
    with pytest.raises(UsageError, match="more than 3 files"):
        select_proofs([*named, str(tmp_path / "[23].json")], limit=3)


@pytest.mark.timeout(300)
def test_verify_over_a_symlink_loop_ends_and_checks_each_proof_once(
    mlp: Compiled, tmp_path: Path
) -> None:
    _symlink_loops(tmp_path)
    shutil.copy(mlp.proof, tmp_path / "a" / "b" / "valid.json")
    result = zkinfer("verify", str(tmp_path / "**" / "*.json"), "--bundle", mlp.bundle.root)
    assert result.code == 0, result.stderr
    assert "1 of 1 proofs valid" in result.stderr


def test_more_proofs_than_the_limit_are_refused_with_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(MAX_PROOFS + 1):
        (folder / f"{i}.json").touch()
    result = zkinfer("verify", str(folder / "*.json"), "--bundle", tmp_path / "bundle", "--json")
    assert result.code == 2
    assert f"more than {MAX_PROOFS:,} files" in result.json["error"]["message"]
