"""The bench's plots: one PNG per section, drawn with matplotlib (the ``bench`` extra).

matplotlib is imported here only, with the Agg backend (no display needed); a run without it
still prints and writes its tables, and says which extra to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prover.bench import BenchResult
from prover.errors import ToolchainError

__all__ = ["draw"]

_COLORS = ("#fc8d62", "#66c2a5", "#8da0cb", "#e78ac3")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ToolchainError(
            "the bench's plots need matplotlib", hint="pip install 'zkinfer[bench]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(ax: Any, groups: list[str], series: list[tuple[str, list[float]]], unit: str) -> None:
    width = 0.8 / max(len(series), 1)
    for j, (label, values) in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(xs, values, width * 0.95, label=label, color=_COLORS[j % len(_COLORS)])
        labels = [f"{v:,.0f}" if v >= 1000 else f"{v:.3g}" for v in values]
        ax.bar_label(bars, labels=labels, fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(unit)
    ax.legend(fontsize=8)


def _overhead(result: BenchResult, ax: Any) -> None:
    rows = result.overhead or []
    series = [
        ("zkinfer prove (process)", [r.prove_s for r in rows]),
        ("bare ezkl (process)", [r.bare_prove_s for r in rows]),
    ]
    if all(r.in_process_prove_s is not None for r in rows):
        series += [
            ("zkinfer prove_values (in process)", [r.in_process_prove_s or 0.0 for r in rows]),
            ("bare ezkl (in process)", [r.in_process_bare_s or 0.0 for r in rows]),
        ]
    _bars(ax, [r.model for r in rows], series, "seconds per proof")
    ax.set_title("prove path: zkinfer vs bare ezkl (lower is better)")


def _batch(result: BenchResult, ax: Any) -> None:
    from matplotlib import ticker

    rows = result.batch or []
    xs = [r.batch for r in rows]
    ax.plot(xs, [r.per_inference_s for r in rows], "o-", color=_COLORS[0], label="zkinfer prove")
    ax.plot(
        xs, [r.per_inference_step_s for r in rows], "s--", color=_COLORS[1], label="ezkl prove step"
    )
    first = next((r for r in rows if r.batch == 1), None)
    if first is not None:
        target = first.per_inference_s / 20
        ax.axhline(target, color="#999", linestyle=":", label="target: 1/20 of batch 1")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("inferences per proof (batch)")
    ax.set_ylabel("seconds per inference")
    ax.set_title("proving time per inference, MLP (lower is better)")
    ax.legend(fontsize=8)


def _gas(result: BenchResult, ax: Any) -> None:
    rows = result.gas.rows if result.gas else ()
    labels = [f"{r.method}\n{r.requests}" for r in rows]
    _bars(ax, labels, [("gas per inference", [float(r.gas_per_inference) for r in rows])], "gas")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.axhline(100_000, color="#999", linestyle=":", label="target at batch 16: 100,000")
    ax.legend(fontsize=8)
    ax.set_title("gas per settled inference, calldata included (lower is better)")


def _service(result: BenchResult, ax: Any) -> None:
    rows = result.service or []
    labels = [f"{r.batch} per proof\n{r.workers} worker(s)" for r in rows]
    _bars(ax, labels, [("requests per second", [r.per_s for r in rows])], "requests / s")
    ax.set_title("service throughput, MLP (higher is better)")


def _verify(result: BenchResult, ax: Any) -> None:
    rows = result.verify or []
    _bars(
        ax,
        [f"{r.proofs} proof(s)" for r in rows],
        [
            ("one process", [r.one_process_per_proof_s for r in rows]),
            ("one process each", [r.per_process_per_proof_s for r in rows]),
        ],
        "seconds per proof",
    )
    ax.set_title("zkinfer verify, seconds per proof (lower is better)")


_DRAW = {
    "overhead": _overhead,
    "batch": _batch,
    "gas": _gas,
    "service": _service,
    "verify": _verify,
}


def draw(result: BenchResult, folder: Path) -> dict[str, Path]:
    """One PNG per section that has figures, ``folder/bench-<section>.png``; their paths."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, plot in _DRAW.items():
        value = getattr(result, name)
        if not value or (name == "gas" and not result.gas.rows):  # type: ignore[union-attr]
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
        try:
            plot(result, ax)
            fig.tight_layout()
            path = folder / f"bench-{name}.png"
            fig.savefig(path, metadata={"Software": None})  # no version stamp: stable bytes
            written[name] = path
        finally:
            plt.close(fig)
    return written
