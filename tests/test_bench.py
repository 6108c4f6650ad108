"""``zkinfer bench``: a quick run prints well-formed figures and writes only its own section of
the report; the pure parts (section choice, the gas extrapolation, the Markdown blocks) on their
own. Never a speed: the figures are checked for shape and arithmetic, not for size."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from prover.bench import BenchResult, parse_sections
from prover.bench.gas import TX_GAS_CAP, GasRow, largest_batch_under_cap
from prover.bench.report import write_report
from prover.bench.verifying import VerifyRow
from prover.errors import UsageError
from tests.helpers import MODELS, zkinfer


def test_unknown_section_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    result = zkinfer("bench", "--only", "verify,speed", "--workdir", tmp_path / "w")
    assert result.code == 2 and "speed: no such section" in result.stderr
    assert not (tmp_path / "w").exists()


def test_sections_keep_their_canonical_order() -> None:
    assert parse_sections("verify, overhead") == ("overhead", "verify")
    assert parse_sections(None) == ("overhead", "batch", "gas", "service", "verify")
    with pytest.raises(UsageError, match="no such section"):
        parse_sections("overhead,gaz")


def test_largest_batch_under_the_cap_follows_the_measured_line() -> None:
    rows = [
        GasRow("fulfill", 1, 700_000, 700_000, 3_500, 13_000),
        GasRow("fulfillBatch", 4, 1_000_000, 250_000, 6_000, 25_000),
        GasRow("fulfillBatch", 16, 1_600_000, 100_000, 12_000, 25_000),
    ]
    # 50,000 gas per slot on top of 800,000: the cap is reached at (cap - 800,000) / 50,000
    assert largest_batch_under_cap(rows) == (TX_GAS_CAP - 800_000) // 50_000
    assert largest_batch_under_cap(rows[:2]) is None  # one batch point gives no line


def _result(one_process_s: float) -> BenchResult:
    row = VerifyRow(1, one_process_s, one_process_s, 0.5, 0.5)
    context = {"on": "today", "cpu": "2", "ezkl": "x", "srs": "dev", "repeat": 1, "load": [1, 2]}
    return BenchResult(context={**context, "quick": True}, verify=[row])


def test_report_rewrites_only_the_sections_that_ran(tmp_path: Path) -> None:
    out = tmp_path / "b.md"
    out.write_text(
        "# B\n\n<!-- bench:batch:start -->\nbatch figures\n<!-- bench:batch:end -->\n\n"
        "<!-- bench:verify:start -->\nold\n<!-- bench:verify:end -->\ntail\n"
    )
    written = write_report(_result(0.25), out, tmp_path / "img")
    text = out.read_text()
    assert "batch figures" in text and "old" not in text and text.endswith("tail\n")
    assert "| 1 | 0.25 s | 0.250 s | 0.50 s | 0.500 s |" in text
    assert "![verify](img/bench-verify.png)" in text
    png = tmp_path / "img" / "bench-verify.png"
    assert written == [out, png] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_report(_result(0.75), out, tmp_path / "img")  # a second run replaces, never appends
    assert out.read_text().count("bench:verify:start") == 1 and "0.75 s" in out.read_text()


@pytest.mark.slow
def test_quick_verify_run_prints_consistent_figures_and_writes_its_report(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.md"
    result = zkinfer(
        "bench", "--quick", "--json", "--only", "verify",
        "--model", MODELS / "breast_cancer_mlp",
        "--workdir", tmp_path / "w", "--out", out,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    doc = result.json
    assert doc["ok"] is True and doc["context"]["quick"] is True
    assert set(doc) >= {"context", "timings", "verify"} and "overhead" not in doc
    rows = doc["verify"]
    assert [r["proofs"] for r in rows] == [1, 3]
    for r in rows:
        assert r["one_process_s"] > 0 and r["per_process_s"] > 0
        assert math.isclose(
            r["one_process_per_proof_s"], r["one_process_s"] / r["proofs"], abs_tol=1e-3
        )
        assert math.isclose(
            r["per_process_per_proof_s"], r["per_process_s"] / r["proofs"], abs_tol=1e-3
        )
    assert doc["written"] == [str(out), str(tmp_path / "img" / "bench-verify.png")]
    assert "<!-- bench:verify:start -->" in out.read_text()
