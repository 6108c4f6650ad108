"""``zkinfer bench``: measure compile, prove and verify per reference model, beside bare ezkl.

Each measured step runs in its own process so that its peak memory (``ru_maxrss`` from
``wait4``) belongs to that step alone. The zkinfer prove path (input checks, digest checks,
witness, ONNX Runtime comparison, prove, self-verify) is timed against the bare ezkl calls it
wraps (``gen_witness`` + ``prove``) on the same bundle and input, so the overhead is visible.
Results go to a Markdown table and an SVG chart; nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prover.core.progress import Progress, StepTimer
from prover.errors import ToolchainError
from prover.version import EZKL_VERSION

__all__ = ["BenchRow", "render_markdown", "render_svg", "run_bench", "write_report"]

# The baseline deliberately calls ezkl directly, outside prover.core.ezkl_backend: it measures
# what a bare ezkl user pays, without any of zkinfer's checks.
_BARE_PROVE = """
import ezkl, sys
b, inp, tmp = sys.argv[1:4]
ezkl.gen_witness(data=inp, model=f"{b}/network.compiled", output=f"{tmp}/w.json",
                 vk_path=f"{b}/vk.key", srs_path=f"{b}/kzg.srs")
ezkl.prove(witness=f"{tmp}/w.json", model=f"{b}/network.compiled", pk_path=f"{b}/pk.key",
           proof_path=f"{tmp}/p.json", srs_path=f"{b}/kzg.srs")
"""
_BARE_VERIFY = """
import ezkl, sys
b, proof = sys.argv[1:3]
assert ezkl.verify(proof_path=proof, settings_path=f"{b}/settings.json", vk_path=f"{b}/vk.key",
                   srs_path=f"{b}/kzg.srs")
"""


@dataclass(frozen=True)
class BenchRow:
    """One reference model's measurements (seconds, bytes, MiB)."""

    model: str
    logrows: int
    compile_s: float
    setup_s: float
    prove_s: float
    bare_prove_s: float
    verify_s: float
    bare_verify_s: float
    pk_bytes: int
    proof_bytes: int
    verifier_bytes: int
    compile_peak_mib: float
    prove_peak_mib: float
    verify_peak_mib: float


def _measure(args: list[str]) -> tuple[float, float, str]:
    """Run a command; return wall seconds, its own peak RSS in MiB, and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode(errors="replace")[-800:]
            raise ToolchainError(f"bench step failed ({' '.join(args[:4])}...): {tail}")
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def _zkinfer(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "prover", *map(str, args)]


def bench_model(
    folder: Path, work: Path, *, repeat: int, max_logrows: int | None, timer: StepTimer
) -> BenchRow:
    """Measure one reference model folder (network.onnx, input.json, calibration.json)."""
    bundle, proof, sample = work / "bundle", work / "proof.json", folder / "input.json"
    extra = ["--max-logrows", str(max_logrows)] if max_logrows else []
    with timer.step(f"{folder.name}: compile (cold)"):
        compile_s, compile_peak, text = _measure(
            _zkinfer(
                "compile",
                folder / "network.onnx",
                "--sample",
                sample,
                "--calibration",
                folder / "calibration.json",
                "--out",
                bundle,
                "--dev-srs",
                "--force",
                "--json",
                *extra,
            )
        )
    compiled = json.loads(text)
    proves, bare_proves, verifies, bare_verifies = [], [], [], []
    prove_peak = verify_peak = 0.0
    with timer.step(f"{folder.name}: prove and verify x{repeat}, zkinfer and bare ezkl"):
        for _ in range(repeat):
            wall, peak, _ = _measure(_zkinfer("prove", bundle, "--input", sample, "--out", proof))
            proves.append(wall)
            prove_peak = max(prove_peak, peak)
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(tmp) / "input.json"
                data.write_text(sample.read_text())
                bare_proves.append(
                    _measure([sys.executable, "-c", _BARE_PROVE, str(bundle), str(data), tmp])[0]
                )
            wall, peak, _ = _measure(_zkinfer("verify", proof, "--bundle", bundle))
            verifies.append(wall)
            verify_peak = max(verify_peak, peak)
            bare_verifies.append(
                _measure([sys.executable, "-c", _BARE_VERIFY, str(bundle), str(proof)])[0]
            )
    from prover.core.bundle import PK, load_bundle

    manifest = load_bundle(bundle).manifest
    return BenchRow(
        model=folder.name,
        logrows=compiled["logrows"],
        compile_s=round(compile_s, 2),
        setup_s=manifest.timings["setup"],
        prove_s=round(statistics.median(proves), 2),
        bare_prove_s=round(statistics.median(bare_proves), 2),
        verify_s=round(statistics.median(verifies), 3),
        bare_verify_s=round(statistics.median(bare_verifies), 3),
        pk_bytes=manifest.sizes[PK],
        proof_bytes=manifest.proof_bytes,
        verifier_bytes=manifest.verifier.runtime_size,
        compile_peak_mib=round(compile_peak),
        prove_peak_mib=round(prove_peak),
        verify_peak_mib=round(verify_peak),
    )


def run_bench(
    folders: list[Path],
    work: Path,
    *,
    repeat: int = 3,
    max_logrows: dict[str, int] | None = None,
    progress: Progress | None = None,
) -> list[BenchRow]:
    """Benchmark each model folder in turn; returns one row per model."""
    timer = StepTimer(progress)
    caps = max_logrows or {}
    return [
        bench_model(f, work / f.name, repeat=repeat, max_logrows=caps.get(f.name), timer=timer)
        for f in folders
    ]


def render_markdown(rows: list[BenchRow], context: dict[str, Any]) -> str:
    """The benchmark table as Markdown, with the conditions it was measured under."""
    head = (
        "| model | logrows | compile (cold) | of which setup | prove: zkinfer | prove: bare ezkl "
        "| verify: zkinfer CLI | verify: bare ezkl | pk.key | proof | verifier bytecode "
        "| peak RSS compile / prove / verify |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r.model} | {r.logrows} | {r.compile_s:.1f} s | {r.setup_s:.1f} s | {r.prove_s:.2f} s "
        f"| {r.bare_prove_s:.2f} s | {r.verify_s:.2f} s | {r.bare_verify_s:.2f} s "
        f"| {r.pk_bytes / 1e6:.0f} MB | {r.proof_bytes} B | {r.verifier_bytes} B "
        f"| {r.compile_peak_mib:.0f} / {r.prove_peak_mib:.0f} / {r.verify_peak_mib:.0f} MiB |"
        for r in rows
    ]
    ctx = ", ".join(f"{k}: {v}" for k, v in context.items())
    return f"_Measured {ctx}._\n\n" + head + "\n".join(lines) + "\n"


def render_svg(rows: list[BenchRow]) -> str:
    """A small grouped bar chart (seconds): compile, zkinfer prove, bare ezkl prove per model."""
    series = [
        ("compile (cold)", "compile_s", "#8da0cb"),
        ("prove: zkinfer", "prove_s", "#fc8d62"),
        ("prove: bare ezkl", "bare_prove_s", "#66c2a5"),
    ]
    width, height, left, bottom, top = 640, 300, 60, 40, 30
    top_value = max(max(getattr(r, key) for _, key, _ in series) for r in rows) or 1.0
    group = (width - left - 20) / max(len(rows), 1)
    bar = group / (len(series) + 1)
    scale = (height - bottom - top) / top_value
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16">seconds per step (lower is better)</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#333"/>',
    ]
    for i, r in enumerate(rows):
        x0 = left + i * group
        for j, (_, key, color) in enumerate(series):
            value = float(getattr(r, key))
            h = value * scale
            x = x0 + (j + 0.5) * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar * 0.9:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{key} {value}</title></rect>'
            )
            parts.append(f'<text x="{x:.1f}" y="{height - bottom - h - 3:.1f}">{value:.1f}</text>')
        parts.append(f'<text x="{x0 + bar / 2:.1f}" y="{height - bottom + 16}">{r.model}</text>')
    for j, (label, _, color) in enumerate(series):
        y = top + 14 * j
        parts.append(
            f'<rect x="{width - 150}" y="{y}" width="10" height="10" fill="{color}"/>'
            f'<text x="{width - 135}" y="{y + 9}">{label}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def rows_to_json(rows: list[BenchRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


_START, _END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_report(
    folders: list[Path], work: Path, out: Path, *, repeat: int, progress: Progress | None
) -> dict[str, Any]:
    """Run the benchmark and replace the table between the markers in ``out`` (and its SVG)."""
    import platform

    rows = run_bench(folders, work, repeat=repeat, progress=progress)
    context = {
        "on": time.strftime("%Y-%m-%d", time.gmtime()),
        "CPU": f"{os.cpu_count()} cores {platform.machine()}",
        "ezkl": EZKL_VERSION,
        "dev SRS": "cached",
        "median of": f"{repeat} runs",
    }
    markdown = render_markdown(rows, context)
    svg_path = out.with_suffix(".svg")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = out.read_text() if out.is_file() else f"# Benchmarks\n\n{_START}\n{_END}\n"
    if _START not in text or _END not in text:
        text += f"\n{_START}\n{_END}\n"
    head, rest = text.split(_START, 1)
    tail = rest.split(_END, 1)[1]
    block = f"{_START}\n{markdown}\n![prove and compile times]({svg_path.name})\n{_END}"
    out.write_text(head + block + tail)
    svg_path.write_text(render_svg(rows))
    return {"rows": rows_to_json(rows), "markdown": markdown, "report": str(out)}
