"""The bench's figures as Markdown tables, written into docs/benchmarks.md between per-section
markers (``<!-- bench:SECTION:start -->`` ... ``end -->``), so that a run of some sections
rewrites only theirs; plots (PNG) beside the tables."""

from __future__ import annotations

import os
from pathlib import Path

from prover.bench import BenchResult
from prover.bench.gas import TX_GAS_CAP
from prover.core.solidity import EIP170_LIMIT

__all__ = ["render_sections", "write_report"]


def _overhead(result: BenchResult) -> str:
    lines = [
        "| model | logrows | compile (cold) | pk.key | prove: zkinfer | prove: bare ezkl | ratio "
        "| in one process: zkinfer | in one process: bare ezkl | ratio | peak RSS compile / "
        "prove / bare |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result.overhead or []:
        inproc = (
            f"{r.in_process_prove_s:.2f} s | {r.in_process_bare_s:.2f} s | "
            f"{r.in_process_ratio:.2f}x"
            if r.in_process_prove_s is not None
            and r.in_process_bare_s is not None
            and r.in_process_ratio is not None
            else "- | - | -"
        )
        lines.append(
            f"| {r.model} | {r.logrows} | {r.compile_s:.1f} s | {r.pk_bytes / 1e6:.0f} MB "
            f"| {r.prove_s:.2f} s | {r.bare_prove_s:.2f} s | {r.ratio:.2f}x | {inproc} "
            f"| {r.compile_peak_mib:.0f} / {r.prove_peak_mib:.0f} / {r.bare_prove_peak_mib:.0f} "
            "MiB |"
        )
    return "\n".join(lines)


def _batch(result: BenchResult) -> str:
    rows = result.batch or []
    first = next((r for r in rows if r.batch == 1), None)
    lines = [
        "| batch | logrows | pk.key | compile (cold) | `zkinfer prove` | of which ezkl prove "
        "| per inference | ezkl prove per inference | vs batch 1 | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        versus = f"1/{first.per_inference_s / r.per_inference_s:.1f}" if first else "-"
        lines.append(
            f"| {r.batch} | {r.logrows} | {r.pk_bytes / 1e6:.0f} MB | {r.compile_s:.1f} s "
            f"| {r.prove_s:.2f} s | {r.prove_step_s:.2f} s | {r.per_inference_s:.3f} s "
            f"| {r.per_inference_step_s:.3f} s | {versus} | {r.prove_peak_mib:.0f} MiB |"
        )
    return "\n".join(lines)


def _gas(result: BenchResult) -> str:
    gas = result.gas
    if gas is None:
        return ""
    lines = [
        "| settlement | requests | gas (calldata included) | gas per inference | calldata "
        "| verifier runtime code |",
        "|---|---|---|---|---|---|",
    ]
    for r in gas.rows:
        over = " (over EIP-170)" if r.verifier_bytes > EIP170_LIMIT else ""
        lines.append(
            f"| `{r.method}` | {r.requests} | {r.gas:,} | {r.gas_per_inference:,} "
            f"| {r.calldata_bytes:,} B | {r.verifier_bytes:,} B{over} |"
        )
    notes = []
    if any(r.verifier_bytes > EIP170_LIMIT for r in gas.rows):
        notes.append(
            f"A verifier over EIP-170's {EIP170_LIMIT:,}-byte limit on deployed code cannot be "
            "deployed on Ethereum mainnet; its gas was measured on an anvil started with "
            "`--disable-code-size-limit`."
        )
    if gas.largest_batch_under_cap is not None:
        notes.append(
            f"Largest batch under the {TX_GAS_CAP:,} gas per-transaction cap, extrapolated from "
            f"a straight line through the measured `fulfillBatch` rows: "
            f"**{gas.largest_batch_under_cap}** requests (not measured at that size)."
        )
    if gas.not_measured:
        notes.append(f"`fulfillBatch`: **not measured**: {gas.not_measured}.")
    return "\n".join(lines) + ("\n\n" + "\n\n".join(notes) if notes else "")


def _service(result: BenchResult) -> str:
    lines = [
        "| requests per proof | workers | requests | first created to last done | throughput "
        "| latency p50 | latency p95 | done |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result.service or []:
        lines.append(
            f"| {r.batch} | {r.workers} | {r.requests} | {r.span_s:.1f} s | {r.per_s:.2f}/s "
            f"| {r.latency_p50_s:.1f} s | {r.latency_p95_s:.1f} s | {r.done} |"
        )
    if result.service_not_measured:
        lines.append(f"\nBatched serving: **not measured**: {result.service_not_measured}.")
    return "\n".join(lines)


def _verify(result: BenchResult) -> str:
    lines = [
        "| proofs | one process: total | per proof | one process each: total | per proof |",
        "|---|---|---|---|---|",
    ]
    for r in result.verify or []:
        lines.append(
            f"| {r.proofs} | {r.one_process_s:.2f} s | {r.one_process_per_proof_s:.3f} s "
            f"| {r.per_process_s:.2f} s | {r.per_process_per_proof_s:.3f} s |"
        )
    return "\n".join(lines)


_RENDER = {
    "overhead": _overhead,
    "batch": _batch,
    "gas": _gas,
    "service": _service,
    "verify": _verify,
}


def render_sections(result: BenchResult) -> dict[str, str]:
    """Each section that ran, as Markdown (a table and its notes)."""
    ctx = result.context
    before, after = ctx["load"]
    stamp = (
        f"_Measured {ctx['on']} on {ctx['cpu']} (load average {before} at the start, {after} "
        f"at the end), ezkl {ctx['ezkl']}, {ctx['srs']} SRS, median of {ctx['repeat']}"
        f"{' (quick run)' if ctx['quick'] else ''}._"
    )
    return {
        name: f"{stamp}\n\n{render(result)}\n"
        for name, render in _RENDER.items()
        if getattr(result, name) is not None
    }


def _replace(text: str, name: str, block: str) -> str:
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    if start not in text or end not in text:
        return f"{text.rstrip()}\n\n{start}\n{block}{end}\n"
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{block}{end}{rest.split(end, 1)[1]}"


def write_report(result: BenchResult, out: Path, images: Path) -> list[Path]:
    """Rewrite the sections' blocks in ``out`` and their plots in ``images``; the files written."""
    from prover.bench.plots import draw

    out.parent.mkdir(parents=True, exist_ok=True)
    pngs = draw(result, images)
    text = out.read_text() if out.is_file() else "# Benchmarks\n"
    for name, markdown in render_sections(result).items():
        block = markdown
        if name in pngs:
            rel = os.path.relpath(pngs[name], out.parent)
            block += f"\n![{name}]({rel})\n"
        text = _replace(text, name, block)
    out.write_text(text)
    return [out, *pngs.values()]
