#!/usr/bin/env python3
"""Run the conformance cases and write their table into docs/models.md.

    .venv/bin/python scripts/conformance_table.py [--out docs/models.md] [--workdir DIR]

Every case of ``tests/helpers/conformance.py`` (the models the pytest suite checks) is compiled
with a development SRS, its second input proven and verified, and compared with ONNX Runtime; each
operator ezkl cannot compile is compiled too, to record how zkinfer refuses it. The table replaces
the text between ``<!-- conformance:start -->`` and ``<!-- conformance:end -->`` in ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the cases live with the tests

from prover.errors import ZkinferError  # noqa: E402
from prover.version import EZKL_VERSION  # noqa: E402
from tests.helpers.conformance import (  # noqa: E402
    ABS_TOLERANCE,
    CASES,
    REL_TOLERANCE,
    UNSUPPORTED,
    run_case,
)

_START, _END = "<!-- conformance:start -->", "<!-- conformance:end -->"


def _supported_rows(work: Path) -> list[str]:
    rows = [
        "| case | exporter | operators | logrows | prove | max \\|proven - ORT\\| | "
        "tolerance | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in CASES:
        print(f"case {case.name} ...", file=sys.stderr, flush=True)
        try:
            r = run_case(case, work / case.name)
        except ZkinferError as exc:
            rows.append(
                f"| {case.name} | {case.exporter} | {case.families} | | | | | "
                f"fails: {str(exc)[:120]} |"
            )
            continue
        verdict = "passes" if r.passed else "FAILS"
        rows.append(
            f"| {case.name} | {case.exporter} | {case.families} | {r.logrows} | "
            f"{r.prove_s:.1f} s | {r.max_abs_diff:.2g} | {r.tolerance:.2g} | {verdict} |"
        )
    return rows


def _unsupported_rows(work: Path) -> list[str]:
    from prover import CompileOptions, compile_model

    rows = ["| operator | zkinfer compile says (exit 2) |", "|---|---|"]
    for case in UNSUPPORTED:
        folder = work / f"unsupported-{case.name}"
        folder.mkdir(parents=True)
        case.build(folder / "model.onnx")
        sample = folder / "in.json"
        sample.write_text('{"input_data": [[' + ", ".join(["0.1"] * 12) + "]]}")
        try:
            compile_model(
                folder / "model.onnx", sample, folder / "b", options=CompileOptions(dev_srs=True)
            )
            said = "compiled (the case list is out of date)"
        except ZkinferError as exc:
            said = str(exc).split(": ", 1)[1].split(";", 1)[0]
            said = f"{type(exc).__name__} (exit {exc.exit_code}): {said}"
        rows.append(f"| {case.name} | {said} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "models.md")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zkinfer-conformance-") as tmp:
        work = args.workdir or Path(tmp)
        started, cpu = time.perf_counter(), time.process_time()
        load = os.getloadavg()[0]
        supported = _supported_rows(work)
        unsupported = _unsupported_rows(work)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        load = max(load, os.getloadavg()[0])
    # times on a shared machine are only comparable with the load they were taken under
    context = (
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} on {os.cpu_count()} cores "
        f"{platform.machine()} (load average up to {load:.1f}), ezkl {EZKL_VERSION}, dev SRS, "
        f"one run each ({took:.0f} s wall, {cpu:.0f} s CPU in all); tolerance = "
        f"{ABS_TOLERANCE} + {REL_TOLERANCE} x max |ONNX Runtime output|; prove = `prove`'s "
        "proving step on the case's second input."
    )
    block = "\n".join([_START, context, "", *supported, "", *unsupported, _END])
    text = args.out.read_text() if args.out.is_file() else f"# Models\n\n{_START}\n{_END}\n"
    if _START not in text or _END not in text:
        text += f"\n{_START}\n{_END}\n"
    head, rest = text.split(_START, 1)
    args.out.write_text(head + block + rest.split(_END, 1)[1])
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
