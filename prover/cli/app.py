"""``zkinfer``: compile ONNX models to circuits, prove inferences, verify proofs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from prover import __version__
from prover.cli import chain_cmds, serve_cmd
from prover.cli.output import (
    JsonOpt,
    command_progress,
    emit,
    format_outputs,
    json_line,
    run_command,
    stderr_console,
)
from prover.core.solidity import EIP170_LIMIT
from prover.errors import EXIT_INVALID, UsageError, ZkinferError

if TYPE_CHECKING:
    from prover.core.verify import VerifyResult

app = typer.Typer(
    name="zkinfer",
    help="Zero-knowledge proofs of ML inference: compile an ONNX model, prove, verify.\n\n"
    "Exit codes: 0 success / proof valid, 1 proof invalid, 2 usage error, "
    "3 environment or artifact error.\n\n"
    "Durable state (deployments records, worker cursors, the devnet's chain, the service's "
    "database and bundles) lives in the data directory ZKINFER_HOME (default "
    "$XDG_DATA_HOME/zkinfer or ~/.local/share/zkinfer); what can be rebuilt or downloaded again "
    "(SRS files, the worker's bundle downloads) in the cache ZKINFER_CACHE_DIR (default "
    "$XDG_CACHE_HOME/zkinfer or ~/.cache/zkinfer). Every variable: docs/configuration.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
srs_app = typer.Typer(help="Manage structured reference strings (SRS).", no_args_is_help=True)
app.add_typer(srs_app, name="srs")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"zkinfer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Zero-knowledge proofs of ML inference."""
    _move_legacy_state()


def _move_legacy_state() -> None:
    """Durable state an earlier version kept in the cache folder moves to the data directory."""
    from prover.core.paths import move_legacy_state

    try:
        notes = move_legacy_state()
    except ZkinferError:  # malformed settings: the command itself reports them (exit 2)
        return
    for note in notes:
        stderr_console().print(f"[yellow]{escape(note)}[/yellow]")


@app.command("compile")
def compile_cmd(
    model: Annotated[Path, typer.Argument(help="The ONNX model to compile.")],
    sample: Annotated[Path, typer.Option("--sample", help="An input file (ezkl JSON format).")],
    out: Annotated[Path, typer.Option("--out", help="Bundle folder to write.")],
    calibration: Annotated[
        Path | None, typer.Option(help="Calibration inputs (default: the sample).")
    ] = None,
    input_visibility: Annotated[str, typer.Option(help="public | hashed")] = "public",
    output_visibility: Annotated[str, typer.Option(help="public | hashed")] = "public",
    param_visibility: Annotated[str, typer.Option(help="fixed (weights in the circuit)")] = "fixed",
    target: Annotated[
        str, typer.Option(help="Calibration target: resources | accuracy")
    ] = "resources",
    srs: Annotated[
        Path | None,
        typer.Option(help="SRS file; 'ceremony' provenance only if its digest matches."),
    ] = None,
    dev_srs: Annotated[
        bool, typer.Option("--dev-srs", help="Generate a local, UNSAFE development SRS.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Inputs per proof (the batch dimension).")] = 1,
    max_logrows: Annotated[int | None, typer.Option(help="Upper bound for calibration.")] = None,
    verifier_limit: Annotated[
        int,
        typer.Option(
            metavar="BYTES",
            help="Largest verifier runtime code to accept: a larger verifier makes compile lay "
            "the circuit out again with fewer columns (without Freivalds' argument for matrix "
            "products), and fail if it is still larger. Default: EIP-170's limit on deployed "
            "code (Ethereum mainnet). 0: keep what ezkl renders, for a chain without the limit.",
        ),
    ] = EIP170_LIMIT,
    force: Annotated[bool, typer.Option(help="Replace an existing, different bundle.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compile MODEL into a bundle: circuit, keys, SRS and Solidity verifier."""
    from prover.core.compile import CompileOptions, compile_model

    with run_command(as_json):
        options = CompileOptions(
            input_visibility=input_visibility,
            output_visibility=output_visibility,
            param_visibility=param_visibility,
            target=target,
            batch_size=batch,
            srs=srs,
            dev_srs=dev_srs,
            max_logrows=max_logrows,
            force=force,
            verifier_limit=verifier_limit,
        )
        result = compile_model(
            model,
            sample,
            out,
            calibration=calibration,
            options=options,
            progress=command_progress(),
        )
        payload = result.to_json()

        def human(c: Console) -> None:
            state = "reused" if result.reused else "compiled"
            c.print(f"bundle  {escape(payload['bundle'])}  ({state})")
            c.print(f"model   {payload['model_id']}")
            c.print(f"digest  {payload['bundle_digest']}  (pin with verify --bundle-digest)")
            c.print(f"logrows {payload['logrows']}   verifier {payload['verifier_runtime_size']} B")
            _print_srs(c, payload["srs_provenance"])

        emit(as_json, {"ok": True, **payload}, human)


def _print_srs(c: Console, provenance: str) -> None:
    style = "bold red" if provenance == "dev-unsafe" else "green"
    c.print(f"srs     [{style}]{provenance}[/{style}]")


@app.command("prove")
def prove_cmd(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder made by `zkinfer compile`.")],
    input: Annotated[Path, typer.Option("--input", help="The input file (ezkl JSON format).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the proof JSON.")],
    allow_out_of_range: Annotated[
        bool, typer.Option(help="Prove inputs far outside the calibrated range.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Prove one inference; print the proven outputs beside ONNX Runtime's."""
    from prover.core.prove import prove

    with run_command(as_json):
        result = prove(
            bundle,
            input,
            out,
            allow_out_of_range=allow_out_of_range,
            progress=command_progress(),
        )
        payload = result.to_json()

        def human(c: Console) -> None:
            c.print(f"proof   {escape(str(result.proof_path))}")
            _print_outputs(c, result.outputs, result.circuit_outputs, result.onnxruntime_outputs)
            c.print(f"max |proven - onnxruntime| = {result.max_abs_diff:.6g}")
            _print_hashes(c, result.input_hash, result.output_hash)
            _print_srs(c, result.srs_provenance)
            for w in result.warnings:
                c.print(f"[yellow]warning: {escape(w)}[/yellow]")

        emit(as_json, {"ok": True, **payload}, human)


def _print_hashes(c: Console, inputs: list[str] | None, outputs: list[str] | None) -> None:
    for what, hashes in (("input", inputs), ("output", outputs)):
        if hashes:
            c.print(f"{what} hash (Poseidon) {escape(', '.join(hashes))}")


def _print_outputs(c: Console, proven: Any, circuit: Any, reference: Any) -> None:
    if proven is None:
        c.print(
            f"circuit outputs      {format_outputs(circuit)}  (private: only their hash is public)"
        )
    else:
        c.print(f"proven outputs       {format_outputs(proven)}")
    c.print(f"ONNX Runtime outputs {format_outputs(reference)}")


@app.command("verify")
def verify_cmd(
    proofs: Annotated[
        list[Path],
        typer.Argument(
            help="Proof JSON file(s), folder(s) of *.json proofs, or quoted glob pattern(s) "
            "such as 'proofs/**/*.json'.",
            metavar="PROOF",
            show_default=False,
        ),
    ],
    bundle: Annotated[Path, typer.Option("--bundle", help="The bundle of the model.")],
    input: Annotated[
        Path | None, typer.Option("--input", help="Also require each proof to be about this input.")
    ] = None,
    slot: Annotated[
        int | None,
        typer.Option(
            help="A slot of a batch bundle (0 to N-1): report that slot's outputs; with --input "
            "(ONE slot's input), also require that slot to hold it.",
        ),
    ] = None,
    bundle_digest: Annotated[
        str | None,
        typer.Option(
            help="Pin the bundle: its digest as printed by compile (exit 3 if it differs)."
        ),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="FILE", help="Also write a JUnit XML report to FILE."),
    ] = None,
    rpc_url: Annotated[
        str | None,
        typer.Option(help="Verify with the deployed verifier on this chain (with --verifier)."),
    ] = None,
    verifier: Annotated[
        str | None,
        typer.Option(help="Address of the bundle's deployed verifier contract (with --rpc-url)."),
    ] = None,
    chain_id: Annotated[
        int | None, typer.Option(help="With --rpc-url: refuse any other chain (exit 3).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object on stdout; for many proofs, JSON Lines: one object "
            "per proof, then a summary object.",
        ),
    ] = False,
) -> None:
    """Verify proofs against a bundle: exit 0 all valid, 1 any invalid, 2 usage, 3 artifact error.

    One PROOF file gives one verdict. Several PROOF arguments, a folder or a glob verify each
    proof against the bundle, checked once, and report every verdict and the totals; the exit
    code is 3 if any proof could not be checked, else 1 if any is invalid. Files inside the
    bundle folder are skipped when a folder or glob is expanded.
    """
    from prover.cli import verify_many_output as many
    from prover.cli.junit import write_junit
    from prover.core.verify import verify
    from prover.core.verify_many import VerifyReport, select_proofs, verify_many

    with run_command(as_json), many.junit_on_error(junit, bundle):
        selection = select_proofs(proofs, exclude=bundle)
        progress = command_progress()
        checker = None
        if rpc_url is not None or verifier is not None:
            if rpc_url is None or verifier is None:
                raise UsageError("--rpc-url and --verifier go together (on-chain verification)")
            from prover.chain.onchain_verify import onchain_checker

            checker = onchain_checker(rpc_url, verifier, chain_id)
        if selection.many:
            report = verify_many(
                selection.paths,
                bundle,
                input_path=input,
                slot=slot,
                bundle_digest=bundle_digest,
                progress=progress,
                on_outcome=many.outcome_printer(as_json),
                checker=checker,
            )
            many.print_summary(report, as_json)
        else:
            result = verify(
                selection.paths[0],
                bundle,
                input_path=input,
                slot=slot,
                bundle_digest=bundle_digest,
                progress=progress,
                checker=checker,
            )
            report = VerifyReport.of_one(bundle, result)
            emit(as_json, {"ok": True, **result.to_json()}, lambda c: _print_verdict(c, result))
        if junit is not None:
            write_junit(junit, report)
    if report.exit_code != 0:
        raise typer.Exit(report.exit_code)


def _print_verdict(c: Console, result: VerifyResult) -> None:
    name = escape(str(result.proof_path))
    if result.valid:
        c.print(f"[bold green]VALID[/bold green] {name} for model {result.model_id[:16]}…")
        if result.outputs is not None:
            where = "" if result.slot is None else f" of slot {result.slot}"
            c.print(f"proven outputs{where} {format_outputs(result.outputs)}")
        _print_hashes(c, result.input_hash, result.output_hash)
    else:
        c.print(f"[bold red]INVALID[/bold red] {name}: {escape(result.reason)}")
    for w in result.warnings:
        c.print(f"[yellow]warning: {escape(w)}[/yellow]")


@srs_app.command("import")
def srs_import_cmd(
    file: Annotated[Path, typer.Argument(help="A ceremony kzg<k>.srs file.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a ceremony SRS file against its published digest and cache it for compile."""
    from prover.core.srs import import_ceremony_srs

    with run_command(as_json):
        cached = import_ceremony_srs(file)
        emit(
            as_json,
            {"ok": True, "cached": str(cached)},
            lambda c: c.print(f"cached {escape(str(cached))}"),
        )


@app.command("demo")
def demo_cmd(
    model_dir: Annotated[Path, typer.Option("--model", help="A reference model folder.")] = Path(
        "models/breast_cancer_mlp"
    ),
    workdir: Annotated[Path, typer.Option(help="Where bundles and proofs go.")] = Path(
        ".zkinfer/demo"
    ),
    chain: Annotated[
        bool, typer.Option(help="Also run the on-chain flow on the local devnet.")
    ] = True,
    http: Annotated[
        bool, typer.Option(help="Also prove one request over HTTP (zkinfer serve + worker).")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Compile a reference model (dev SRS), prove its sample input and verify the proof; then
    prove it once more over HTTP (zkinfer serve, a zkinfer worker process); then, on a local
    devnet, deploy, let a dApp request the inference, prove, fulfil and settle it."""
    from prover.demo import run_demo

    with run_command(as_json):
        payload = run_demo(model_dir, workdir, progress=command_progress(), chain=chain, http=http)
        emit(as_json, {"ok": True, **payload}, lambda c: _print_demo(c, model_dir.name, payload))
    if not payload["verify"]["valid"]:
        raise typer.Exit(EXIT_INVALID)


@app.command("bench")
def bench_cmd(
    models: Annotated[
        list[Path] | None, typer.Option("--model", help="Model folder(s); default: models/*.")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated sections: overhead,batch,gas,service,verify (default: all)."
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Smoke run: the MLP only, one repetition, small batches; writes no report "
            "unless --out is given.",
        ),
    ] = False,
    repeat: Annotated[int, typer.Option(help="Prove/verify repetitions (median).")] = 3,
    out: Annotated[
        Path | None,
        typer.Option(help="Markdown file to update (default: docs/benchmarks.md)."),
    ] = None,
    images: Annotated[
        Path | None, typer.Option(help="Folder of the PNG plots (default: img/ beside --out).")
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Scratch folder.")] = Path(".zkinfer/bench"),
    as_json: JsonOpt = False,
) -> None:
    """Measure the cost of each verified inference (prove overhead, batching, gas, service,
    verify) side by side; update the tables and plots of docs/benchmarks.md."""
    from prover.bench import BenchOptions, parse_sections, run_bench
    from prover.bench.report import render_sections, write_report

    with run_command(as_json):
        if repeat < 1:
            raise UsageError(f"--repeat {repeat}: must be at least 1")
        sections = parse_sections(only)
        folders = tuple(models or sorted(p.parent for p in Path("models").glob("*/network.onnx")))
        options = (
            BenchOptions.quick_run(folders, sections)
            if quick
            else BenchOptions(models=folders, sections=sections, repeat=repeat)
        )
        result = run_bench(options, workdir, progress=command_progress())
        report = out if out is not None or quick else Path("docs/benchmarks.md")
        written = write_report(result, report, images or report.parent / "img") if report else []
        payload = {"ok": True, **result.to_json(), "written": [str(p) for p in written]}
        markdown = "\n".join(render_sections(result).values())
        emit(as_json, payload, lambda c: c.print(markdown, markup=False))


def _print_demo(c: Console, name: str, payload: dict[str, Any]) -> None:
    from rich.table import Table

    compiled, proved, verdict = payload["compile"], payload["prove"], payload["verify"]
    table = Table(title=f"zkinfer demo: {name}", show_header=False)
    table.add_row("bundle", f"{compiled['bundle']} (logrows {compiled['logrows']})")
    table.add_row("proven output", format_outputs(verdict["outputs"] or []))
    if payload["label"] is not None:
        table.add_row("proven class", str(payload["label"]))
    table.add_row("ONNX Runtime output", format_outputs(proved["onnxruntime_outputs"]))
    table.add_row("max difference", f"{proved['max_abs_diff']:.6f}")
    table.add_row("proof", f"{proved['proof']}")
    ok = "[bold green]VALID[/bold green]" if verdict["valid"] else "[bold red]INVALID[/bold red]"
    table.add_row("verification", f"{ok} {escape(verdict['reason'])}")
    compile_time = "reused" if compiled["reused"] else f"{compiled['timings'].get('total', 0):.1f}s"
    table.add_row(
        "time",
        f"compile {compile_time}, prove {proved['timings'].get('prove', 0):.1f}s, "
        f"verify {verdict['timings']['verify']:.2f}s",
    )
    if compiled["srs_provenance"] == "dev-unsafe":
        table.add_row("SRS", "[bold red]dev-unsafe[/bold red]: for development only")
    else:
        table.add_row("SRS", f"[green]{compiled['srs_provenance']}[/green]")
    c.print(table)
    if "http" in payload:
        _print_http_demo(c, payload["http"])
    if "chain" in payload:
        _print_chain_demo(c, payload["chain"])


def _print_http_demo(c: Console, http: dict[str, Any]) -> None:
    worker = http["worker"]
    model = f"model {http['model_id']}" + (" (reused)" if http["model_reused"] else "")
    c.print(f"[bold]over HTTP[/bold]: zkinfer serve {http['url']}, {model}")
    c.print(
        f"  request {http['inference_id']}: proven by a zkinfer worker process "
        f"(prove {worker['prove_s']:.1f}s, lease {worker['status']}), re-verified by the service"
    )
    c.print(
        f"  status {http['status']}, verified {str(http['verified']).lower()}, outputs "
        f"{format_outputs(http['outputs'] or [])}, provider {http['provider']}"
    )


def _print_chain_demo(c: Console, chain: dict[str, Any]) -> None:
    c.print(f"[bold]on chain[/bold]: devnet {chain['rpc_url']} (chain id {chain['chain_id']})")
    if "deploy_verifier" not in chain["transactions"]:
        c.print("  verifier, market and registration reused from the devnet's saved state")
    for step, tx in chain["transactions"].items():
        c.print(f"  {step:<16} {tx['tx']}  gas {tx['gas_used']:>9,}")
    c.print(f"market {chain['market']}   verifier {chain['verifier']}   dApp {chain['consumer']}")
    outputs = format_outputs([chain["outputs"]])
    c.print(f"request {chain['request_id']}: proven outputs {outputs} settled on chain")
    decision = "referred for specialist review" if chain["referred"] else "not referred"
    c.print(
        f"the dApp acted on the proven output: margin {chain['malignant_margin_fixed_point']} "
        f"(fixed point, scale 2^13) -> case {decision}"
    )
    c.print(
        f"provider {chain['provider']} was paid {chain['reward_wei'] / 1e18:g} ETH and withdrew"
    )


chain_cmds.register(app)
app.command("serve")(serve_cmd.serve_cmd)


def run() -> None:
    """Console-script entry point: argument errors, too, honour ``--json`` and exit 2."""
    try:
        code = app(standalone_mode=False)
    except Exception as exc:  # click's argument errors carry show() and exit_code (2)
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if not callable(show) or not isinstance(exit_code, int):
            raise
        if "--json" in sys.argv[1:]:
            formatter = getattr(exc, "format_message", None)
            message = formatter() if callable(formatter) else str(exc)
            error = {"type": "UsageError", "message": message}
            json_line({"ok": False, "error": error})
        show()
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)
