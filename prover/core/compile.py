"""``compile_model``: from an ONNX file to a checked, content-addressed bundle.

Steps: inspect the ONNX, check the sample, settings and calibration, circuit compile, SRS, witness
of the sample (checked against ONNX Runtime), key setup, a self-test proof verified locally, and the
Solidity verifier rendered by ezkl and compiled with solc-js. The bundle is built in a temporary
folder beside the destination and moved into place only when every step passed, so a failure never
leaves a half-written bundle or clobbers a good one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prover.core import bundle as b
from prover.core import ezkl_backend, isolation
from prover.core.batch_rows import check_rows_independent
from prover.core.dtypes import check_kinds, kind_of_onnx_type
from prover.core.hashing import sha256_bytes, sha256_file, sha256_json
from prover.core.inputs import InputRange, load_inputs, validate_inputs
from prover.core.jsonio import loads_bounded
from prover.core.manifest import CompileArgs, Manifest, model_id_for, source_difference
from prover.core.manifest_check import verifier_proof_length
from prover.core.onnx_convert import reference_plan
from prover.core.onnx_limits import check_tensor_sizes
from prover.core.onnx_model import OnnxInfo, inspect_onnx
from prover.core.progress import Progress, StepTimer
from prover.core.slot_graph import SLOTTED_ONNX, CircuitGraph, circuit_graph
from prover.core.solidity import EIP170_LIMIT, CompiledContract, compile_solidity
from prover.core.srs import CEREMONY, SrsChoice, cached_ceremony_srs, resolve_srs
from prover.core.verifier_check import check_verifier_matches_keys
from prover.core.witness import check_against_onnxruntime, fidelity_problem, instance_layout
from prover.errors import ArtifactError, CircuitError, InputError, SrsError, UsageError
from prover.version import BUNDLE_FORMAT, EZKL_VERSION, __version__

__all__ = ["CompileOptions", "CompileResult", "compile_model"]

_VISIBILITY = {
    "input": ("public", "hashed"),
    "output": ("public", "hashed"),
    "param": ("fixed",),
}
_TARGETS = ("resources", "accuracy")


@dataclass(frozen=True)
class CompileOptions:
    """Choices for :func:`compile_model`; the defaults are the safe, cheap ones."""

    input_visibility: str = "public"
    output_visibility: str = "public"
    param_visibility: str = "fixed"
    target: str = "resources"
    batch_size: int = 1
    srs: Path | None = None
    dev_srs: bool = False
    max_logrows: int | None = None
    force: bool = False
    #: The largest verifier runtime code to accept, in bytes (0: any size, for a chain without
    #: EIP-170's limit): a larger verifier makes compile lay the circuit out again with fewer
    #: columns (see :func:`_fit_verifier`), and fail when no layout fits.
    verifier_limit: int = EIP170_LIMIT

    def validate(self) -> None:
        """Raise :class:`UsageError` for unknown or unsafe choices."""
        for what, value in (
            ("input", self.input_visibility),
            ("output", self.output_visibility),
            ("param", self.param_visibility),
        ):
            if value not in _VISIBILITY[what]:
                allowed = " or ".join(_VISIBILITY[what])
                extra = (
                    " (private params would let a prover swap the weights; hashed params need "
                    "their hash pinned, which zkinfer does not do yet)"
                    if what == "param"
                    else ""
                )
                raise UsageError(f"{value!r}: use {allowed}{extra}", field=f"{what}_visibility")
        if self.target not in _TARGETS:
            raise UsageError(f"{self.target!r}: use resources or accuracy", field="target")
        if self.batch_size < 1:
            raise UsageError(f"{self.batch_size}: must be at least 1", field="batch_size")
        if self.max_logrows is not None and not 1 <= self.max_logrows <= 26:
            raise UsageError(f"{self.max_logrows}: must be between 1 and 26", field="max_logrows")
        if self.verifier_limit < 0:
            raise UsageError(
                f"{self.verifier_limit}: must be a number of bytes, or 0 for no limit",
                field="verifier_limit",
            )
        if self.srs is not None and self.dev_srs:
            raise UsageError(
                f"{self.srs} and a development SRS exclude each other",
                field="srs",
                hint="pass {srs} or {dev_srs}, not both",
            )

    def run_args_json(self) -> dict[str, Any]:
        """The choices that define the circuit (part of the model id), as the manifest records
        them."""
        return CompileArgs(
            input_visibility=self.input_visibility,
            output_visibility=self.output_visibility,
            param_visibility=self.param_visibility,
            target=self.target,
            batch_size=self.batch_size,
            max_logrows=self.max_logrows,
            verifier_limit=self.verifier_limit,
        ).to_json()


@dataclass(frozen=True)
class CompileResult:
    """A compiled bundle: where it is, its manifest, and whether it was reused from a prior run."""

    bundle: b.Bundle
    reused: bool
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as printed by ``zkinfer compile --json``."""
        m = self.bundle.manifest
        return {
            "bundle": str(self.bundle.root),
            "model_id": m.model_id,
            "bundle_digest": self.bundle.digest,
            "reused": self.reused,
            "logrows": m.circuit.logrows,
            "srs_provenance": m.srs.provenance,
            "visibility": m.visibility.to_json(),
            "instances": m.instances.to_json(),
            "verifier_runtime_size": m.verifier.runtime_size,
            "pk_bytes": m.sizes[b.PK],
            "timings": self.timings or dict(m.timings),
        }


def _variables(info: OnnxInfo, batch: int) -> tuple[tuple[str, int], ...]:
    """ezkl needs symbolic dimensions fixed at settings time; only a leading one is the batch."""
    for spec in info.inputs + info.outputs:
        for position, dim in enumerate(spec.dims):
            if isinstance(dim, str) and position != 0:
                raise UsageError(
                    f"{info.path}: dimension {position} of {spec.name!r} is symbolic ({dim!r}); "
                    "only the leading batch axis may be: export with fixed sizes for the others"
                )
    names = info.symbolic_dims or ("batch_size",)
    return tuple((name, batch) for name in names)


def _reusable(
    out: Path, source: tuple[str, dict[str, Any], str], options: CompileOptions
) -> tuple[b.Bundle | None, str]:
    """The bundle already at ``out`` if it is intact, this model compiled the same way, and on the
    SRS asked for; otherwise ``None`` and what it holds instead. ``source`` is the ONNX digest,
    run arguments and calibration digest asked for."""
    if not (out / b.MANIFEST).is_file():
        return None, "something else"
    try:
        existing = b.load_bundle(out, check=b.FILES)
        check_verifier_matches_keys(existing, bytecode=False)
    except ArtifactError as exc:
        return None, f"a damaged bundle ({exc})"
    differs = source_difference(existing.manifest, *source)
    if differs is not None:
        return None, differs
    size = existing.manifest.verifier.runtime_size
    if 0 < options.verifier_limit < size:
        return None, f"this model with a verifier of {size:,} bytes, over {_limit_words(options)}"
    srs = existing.manifest.srs
    other_srs = f"this model built on another SRS ({srs.provenance})"
    if options.srs is not None:
        same = sha256_file(Path(options.srs)) == srs.sha256
        return (existing, "") if same else (None, other_srs)
    if srs.provenance == CEREMONY:
        return existing, ""
    # a dev bundle is reused only while a dev SRS is asked for and no ceremony file is cached
    if options.dev_srs and cached_ceremony_srs(srs.logrows) is None:
        return existing, ""
    return None, other_srs


def _check_out(out: Path, force: bool, holds: str) -> None:
    """Refuse an ``out`` that would lose data: a file, or a folder that is not a bundle."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file", field="out", hint="pass a folder for the bundle")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise UsageError(
                f"{out} holds {holds}",
                field="out",
                hint="pick another {out} or pass {force} to replace it",
            )
        if not (out / b.MANIFEST).is_file():
            raise UsageError(f"replaces only a zkinfer bundle, and {out} is not one", field="force")


def _move_into_place(work: Path, out: Path) -> None:
    """Swap the finished bundle in; the old one is removed only once the new one is in place."""
    work.chmod(0o755)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(work, out)
    shutil.rmtree(old, ignore_errors=True)


def _load_calibration(path: Path, n_inputs: int) -> list[list[float]]:
    """Calibration inputs; a file with one list per sample gets told to concatenate them."""
    try:
        return load_inputs(path, n_inputs)
    except InputError:
        try:
            data = loads_bounded(path.read_text()).get("input_data")
        except (OSError, ValueError, AttributeError, RecursionError):
            data = None
        if (
            isinstance(data, list)
            and len(data) > n_inputs
            and len(data) % n_inputs == 0
            and all(isinstance(row, list) for row in data)
        ):
            raise InputError(
                f'{path}: "input_data" holds {len(data)} lists, one per sample it seems, for a '
                f"model with {n_inputs} input(s); a calibration file concatenates its samples "
                'into one flat list per model input: {"input_data": [[<sample 1 values>, '
                "<sample 2 values>, ...]]}"
            ) from None
        raise


def _write_calibration(path: Path, rows: list[list[float]]) -> None:
    path.write_text(json.dumps({"input_data": rows}))


def compile_model(
    model: Path,
    sample: Path,
    out: Path,
    *,
    calibration: Path | None = None,
    options: CompileOptions | None = None,
    progress: Progress | None = None,
) -> CompileResult:
    """Compile ``model`` into a bundle at ``out``; reuse ``out`` if it already holds this model.

    Raises :class:`~prover.errors.ModelError` for an unusable ONNX file (or a batch model whose rows
    are not independent),
    :class:`~prover.errors.InputError` for a bad sample or calibration file,
    :class:`~prover.errors.SrsError` when no SRS is available, and
    :class:`~prover.errors.CircuitError` / :class:`~prover.errors.ToolchainError` when ezkl or
    solc-js fail. ``out`` is left untouched on any failure.
    """
    options = options or CompileOptions()
    options.validate()
    ezkl_backend.check_ezkl_version()
    timer = StepTimer(progress)
    out = Path(out)
    if out.name in ("", ".", ".."):  # the bundle is swapped in beside its name: needs a real one
        out = out.resolve()
    started = time.perf_counter()

    with timer.step("inspect model"):
        info = inspect_onnx(Path(model))
        if options.batch_size > 1 and not info.symbolic_dims:
            raise UsageError(
                f"{options.batch_size}: {model} has a fixed batch dimension",
                field="batch_size",
                hint="export it with a symbolic batch axis "
                "(torch.onnx.export(..., dynamic_axes=...)) to batch",
            )
        variables = _variables(info, options.batch_size)
        shapes = [s.resolved(dict(variables)) for s in info.inputs]
        check_tensor_sizes(
            info, {s.name: shape for s, shape in zip(info.inputs, shapes, strict=True)}
        )
        sample_values = load_inputs(Path(sample), len(info.inputs), shapes)
        validate_inputs(sample_values, shapes, None, str(sample))
        calib_values = (
            _load_calibration(Path(calibration), len(info.inputs)) if calibration else sample_values
        )
        validate_inputs(calib_values, shapes, None, str(calibration or sample), samples=0)
        kinds = [kind_of_onnx_type(s.elem_type) for s in info.inputs]
        names = [s.name for s in info.inputs]
        check_kinds(sample_values, kinds, names, str(sample))
        check_kinds(calib_values, kinds, names, str(calibration or sample))
        # slots are read as the model run on one row: refuse a model that mixes rows, before ezkl
        check_rows_independent(info.data, names, shapes, sample_values, options.batch_size)
        calibration_sha = sha256_json(calib_values)
        source = (sha256_bytes(info.data), options.run_args_json(), calibration_sha)

    with timer.step("check existing bundle", "digests of every file"):
        existing, holds = _reusable(out, source, options)
    if existing is not None and not options.force:
        timer.progress.note(f"{out} already holds model {existing.model_id[:16]}; reusing it")
        return CompileResult(bundle=existing, reused=True, timings=timer.timings)
    _check_out(out, options.force, holds)

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with isolation.isolated():  # one child process runs every ezkl step of this compile
            manifest = _build(
                work, info, variables, shapes, sample_values, calib_values, options, timer
            )
        manifest["timings"] = {**timer.timings, "total": round(time.perf_counter() - started, 3)}
        manifest["files"] = {name: sha256_file(work / name) for name in b.FILES}
        manifest["sizes"] = {name: (work / name).stat().st_size for name in b.FILES}
        manifest["calibration_sha256"] = calibration_sha
        manifest["model_id"] = model_id_for(*source, manifest["files"])
        slots = Manifest.from_json(manifest, work / b.MANIFEST).slots
        manifest["slots"] = None if slots is None else slots.to_json()
        written = Manifest.from_json(manifest, work / b.MANIFEST).to_json()
        (work / b.MANIFEST).write_text(json.dumps(written, indent=2, sort_keys=True) + "\n")
        _move_into_place(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return CompileResult(bundle=b.load_bundle(out), reused=False, timings=manifest["timings"])


def _limit_words(options: CompileOptions) -> str:
    if options.verifier_limit == EIP170_LIMIT:
        return f"EIP-170's limit of {EIP170_LIMIT:,} bytes on deployed code"
    return f"the limit of {options.verifier_limit:,} bytes asked for"


@dataclass(frozen=True)
class _Circuit:
    """One layout of the circuit, built in the work folder: its settings, SRS, sample witness and
    compiled verifier (a later layout overwrites the files of an earlier one)."""

    settings: dict[str, Any]
    srs: SrsChoice
    witness: Any
    fidelity: dict[str, Any]
    contract: CompiledContract

    @property
    def logrows(self) -> int:
        return int(self.settings["run_args"]["logrows"])

    @property
    def size(self) -> int:
        return self.contract.runtime_size


@dataclass(frozen=True)
class _Work:
    """What every layout of one compile shares."""

    work: Path
    graph: CircuitGraph
    info: OnnxInfo
    shapes: list[tuple[int, ...]]
    sample_values: list[list[float]]
    calib_file: Path
    options: CompileOptions
    timer: StepTimer


def _lay_out(w: _Work, run_args: ezkl_backend.RunArgs, *, calibrate: bool, again: str) -> None:
    """Write ``settings.json``: ezkl's settings for ``run_args``, calibrated unless they already
    carry a calibrated circuit's choices."""
    settings = w.work / b.SETTINGS
    with w.timer.step("settings", again):
        ezkl_backend.gen_settings(w.graph.path, settings, run_args)
    if calibrate:
        with w.timer.step("calibrate", f"target={w.options.target}{again and ', ' + again}"):
            ezkl_backend.calibrate(
                w.calib_file, w.graph.path, settings, w.options.target, w.options.max_logrows
            )


def _build_circuit(w: _Work, again: str) -> _Circuit:
    """From ``settings.json``: compiled circuit, SRS, sample witness (checked against ONNX
    Runtime), keys, and the Solidity verifier rendered by ezkl and compiled with solc-js."""
    work, options, timer = w.work, w.options, w.timer
    settings, compiled = work / b.SETTINGS, work / b.COMPILED
    vk, pk, srs_path = work / b.VK, work / b.PK, work / b.SRS
    names = [s.name for s in w.info.inputs]
    with timer.step("compile circuit", again):
        ezkl_backend.compile_circuit(w.graph.path, compiled, settings)
    circuit = json.loads(settings.read_text())
    logrows = int(circuit["run_args"]["logrows"])

    srs = resolve_srs(logrows, srs_file=options.srs, dev=options.dev_srs, timer=timer)
    shutil.copyfile(srs.path, srs_path)
    if sha256_file(srs_path) != srs.sha256:  # provenance must describe the bytes in the bundle
        raise SrsError(f"{srs.path}: the file changed while it was copied into the bundle")

    sample_values = w.sample_values
    sample_file = work / "sample.json"
    sample_file.write_text(json.dumps({"input_data": w.graph.values(sample_values)}))
    with timer.step("witness", "sample input, checked against ONNX Runtime"):
        witness = ezkl_backend.gen_witness(sample_file, compiled, work / "witness.json", None, None)
        fidelity = check_against_onnxruntime(
            work / b.ONNX, names, w.shapes, sample_values, witness, circuit
        )
        if w.graph.slotted:  # the circuit's graph, run as ezkl ran it, must give the same
            rewritten = check_against_onnxruntime(
                w.graph.path,
                w.graph.names,
                w.graph.shapes,
                w.graph.values(sample_values),
                witness,
                circuit,
            )
            if rewritten["onnxruntime"] != fidelity["onnxruntime"]:
                raise CircuitError(
                    "the graph with one input per slot computes other outputs than the model on "
                    "the sample input under ONNX Runtime"
                )
    problem = fidelity_problem(fidelity)
    if problem:
        raise CircuitError(
            f"on the sample input, {problem}",
            hint="recompile with {target} accuracy or with calibration data that covers the "
            "inputs you will prove",
        )
    with timer.step("setup", f"proving and verifying keys, logrows {logrows}"):
        ezkl_backend.setup(compiled, vk, pk, srs_path)
    with timer.step("solidity verifier", "render with ezkl, compile with solc-js"):
        ezkl_backend.render_evm_verifier(vk, settings, work / b.SOLIDITY, srs_path)
        contract = compile_solidity(work / b.SOLIDITY, "Halo2Verifier")
    return _Circuit(circuit, srs, witness, fidelity, contract)


def _same_layout(a: dict[str, Any], b_: dict[str, Any]) -> bool:
    """Whether two ``settings.json`` describe the same circuit but for Freivalds' flag."""

    def core(settings: dict[str, Any]) -> dict[str, Any]:
        run_args = {k: v for k, v in settings["run_args"].items() if k != "disable_freivalds"}
        return {**settings, "run_args": run_args, "timestamp": None}

    return core(a) == core(b_)


def _fit_verifier(w: _Work, base: ezkl_backend.RunArgs, first: _Circuit) -> _Circuit:
    """Lay the circuit out again so that its verifier fits ``verifier_limit``; raise
    :class:`CircuitError` naming the ways out when it does not.

    Each advice, fixed or lookup column adds a commitment, evaluations and their code to the
    verifier. ezkl checks a matrix product with both sides wider than one row (a batch's rows
    times the weights) by Freivalds' argument: an einsum chip of six more advice column groups,
    half of them in a second phase, and a challenge per output axis. Batch circuits get it,
    one-row circuits do not; laid out without it (more rows, fewer columns) the MLP's batch
    verifiers are the size of its one-row verifier. A larger logrows than calibration's does not
    help: calibration already picks one where every column group fits one column of rows, so the
    columns stay; only a ``max_logrows`` that held calibration back can leave lookup tables split
    over several columns, and the error then says to raise it. The layout is tried for real:
    setup and render, no estimate.
    """
    options = w.options
    limit = options.verifier_limit
    w.timer.progress.note(
        f"the verifier is {first.size:,} bytes, over {_limit_words(options)}: laying the circuit "
        "out again without Freivalds' argument for matrix products (fewer columns)"
    )
    tried = [f"{first.size:,} bytes at logrows {first.logrows}"]
    plain = replace(base, extra=(("disable_freivalds", True),))
    _lay_out(w, plain, calibrate=True, again="without Freivalds' argument")
    laid_out = json.loads((w.work / b.SETTINGS).read_text())
    best = first
    if _same_layout(laid_out, first.settings):
        w.timer.progress.note("the circuit uses no Freivalds' argument: its layout is the same")
    else:
        made = _build_circuit(w, "without Freivalds' argument")
        tried.append(f"{made.size:,} bytes at logrows {made.logrows} without Freivalds' argument")
        if made.size <= limit:
            return made
        best = made if made.size < first.size else first
    logrows = int(laid_out["run_args"]["logrows"])
    capped = options.max_logrows is not None and logrows >= options.max_logrows
    capped = capped and logrows < 26  # ezkl's largest
    raise CircuitError(
        f"the Solidity verifier is {best.size:,} bytes of runtime code at its smallest "
        f"({'; '.join(tried)}), over {_limit_words(options)}: it cannot be deployed where that "
        "limit holds",
        hint=(
            f"pass {{max_logrows}} above {logrows} (calibration stopped there: more rows per "
            "column can mean fewer lookup columns; each step doubles the proving time), or "
            if capped
            else ""
        )
        + "pass {verifier_limit} 0 to keep it for a chain without the limit",
    )


def _build(
    work: Path,
    info: OnnxInfo,
    variables: tuple[tuple[str, int], ...],
    shapes: list[tuple[int, ...]],
    sample_values: list[list[float]],
    calib_values: list[list[float]],
    options: CompileOptions,
    timer: StepTimer,
) -> dict[str, Any]:
    """Run every ezkl step inside ``work`` and return the manifest (without digests)."""
    onnx_path = work / b.ONNX
    compiled, pk, srs_path = work / b.COMPILED, work / b.PK, work / b.SRS
    onnx_path.write_bytes(info.data)
    names = [s.name for s in info.inputs]
    hashed_batch = options.batch_size > 1 and options.input_visibility == "hashed"
    graph = circuit_graph(work, info.data, names, shapes, options.batch_size, slotted=hashed_batch)
    calib_file = work / "calibration.json"
    _write_calibration(calib_file, graph.values(calib_values))
    run_args = ezkl_backend.RunArgs(
        input_visibility=options.input_visibility,
        output_visibility=options.output_visibility,
        param_visibility=options.param_visibility,
        variables=variables,
    )
    w = _Work(work, graph, info, shapes, sample_values, calib_file, options, timer)
    _lay_out(w, run_args, calibrate=True, again="")
    made = _build_circuit(w, "")
    if 0 < options.verifier_limit < made.size:
        made = _fit_verifier(w, run_args, made)
    circuit, srs, witness, fidelity, contract = (
        made.settings,
        made.srs,
        made.witness,
        made.fidelity,
        made.contract,
    )
    logrows = made.logrows
    layout = instance_layout(witness, options.input_visibility, options.output_visibility)

    with timer.step("self-test proof", "prove and verify the sample"):
        proof = ezkl_backend.prove(
            work / "witness.json", compiled, pk, work / "proof.json", srs_path
        )
        ok, why = ezkl_backend.verify(work / "proof.json", work / b.SETTINGS, work / b.VK, srs_path)
        if not ok:
            raise CircuitError(f"the self-test proof of the sample did not verify: {why}")
        if len(proof["instances"][0]) != layout["total"]:
            raise CircuitError("the self-test proof's instance count differs from the witness")
        accepts = verifier_proof_length((work / b.SOLIDITY).read_text())
        if accepts != len(proof["proof"]):  # verify derives the proof length from the verifier
            raise CircuitError(
                f"the rendered verifier accepts proofs of {accepts} bytes, but the self-test "
                f"proof has {len(proof['proof'])}"
            )
    (work / b.VERIFIER_JSON).write_text(json.dumps(contract.to_json(), indent=1) + "\n")
    if contract.runtime_size > EIP170_LIMIT:
        timer.progress.note(
            f"warning: verifier runtime bytecode is {contract.runtime_size:,} bytes, over "
            f"EIP-170's limit of {EIP170_LIMIT:,}: it cannot be deployed on Ethereum mainnet"
        )
    for scratch in ("calibration.json", "sample.json", "witness.json", "proof.json", SLOTTED_ONNX):
        (work / scratch).unlink(missing_ok=True)

    ranges = [InputRange.from_values(vals) for vals in calib_values]
    return {
        "format": BUNDLE_FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ezkl_version": EZKL_VERSION,
        "zkinfer_version": __version__,
        "run_args": options.run_args_json(),
        "visibility": {
            "input": options.input_visibility,
            "output": options.output_visibility,
            "param": options.param_visibility,
        },
        "batch_size": options.batch_size,
        "variables": [list(v) for v in variables],
        "onnx": {
            "sha256": sha256_bytes(info.data),
            "opset": info.opset,
            "ops": list(info.op_types),
            "onnxruntime": reference_plan(info.opset).to_json(),
        },
        "inputs": [
            {"name": s.name, "shape": list(shape), "range": r.to_json()}
            for s, shape, r in zip(info.inputs, shapes, ranges, strict=True)
        ],
        "outputs": [
            {"name": o.name, "shape": list(o.resolved(dict(variables)))} for o in info.outputs
        ],
        "circuit": {
            "logrows": logrows,
            "input_scales": graph.per_input(circuit["model_input_scales"]),
            "output_scales": circuit["model_output_scales"],
            "input_types": graph.per_input(circuit.get("input_types")),
            "num_rows": circuit.get("num_rows"),
            "check_mode": circuit["run_args"].get("check_mode"),
        },
        "instances": layout,
        "proof_bytes": len(proof["proof"]),
        "srs": {
            "sha256": srs.sha256,
            "logrows": srs.logrows,
            "provenance": srs.provenance,
            "note": srs.note,
        },
        "verifier": {
            "contract": contract.name,
            "runtime_size": contract.runtime_size,
            "compiler": contract.compiler,
        },
        "sample_fidelity": fidelity,
        **({"slotted_inputs": True} if graph.slotted else {}),
    }
