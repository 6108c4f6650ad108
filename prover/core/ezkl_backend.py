"""The one module that calls ezkl.

It owns ezkl's quirks: keyword-only calls (positional order changed between versions), the async
functions that need an event loop, the Rust side printing tables and logs straight to the process's
file descriptors (which would corrupt ``--json`` on stdout), and errors that carry the useful part
only in that log. Everything else in zkinfer speaks in paths, bundles and proofs.

The heavy steps (settings, calibration, circuit compilation, witness, setup, proving) run through
:mod:`prover.core.isolation`: by default in a child process with a memory limit, so that ezkl
aborting on a hostile or oversized model is an error for the caller, not the caller's death.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ezkl

from prover.core import isolation
from prover.errors import CircuitError, ModelError, ToolchainError
from prover.version import EZKL_VERSION

__all__ = [
    "INSTALLED_EZKL_VERSION",
    "RunArgs",
    "calibrate",
    "check_ezkl_version",
    "compile_circuit",
    "float_to_felts",
    "gen_settings",
    "gen_srs",
    "gen_witness",
    "poseidon_hash",
    "prove",
    "render_evm_verifier",
    "run_step",
    "setup",
    "verify",
]

#: The ezkl this process imported; bundles are made and read with :data:`EZKL_VERSION` only.
INSTALLED_EZKL_VERSION: str = getattr(ezkl, "__version__", "unknown")
_FD_LOCK = threading.Lock()
#: Set in the child process of :mod:`prover.core.isolation`, whose fds 1 and 2 already go to a
#: log file the parent reads (even after a crash, which an in-process capture would lose).
CHILD = False
# ezkl names operators by tract's internal names; map the ones whose ONNX name differs.
_TRACT_TO_ONNX = {"Rem": "Mod", "Scan": "Loop/Scan", "NonZero": "NonZero", "Lrn": "LRN"}


def check_ezkl_version() -> None:
    """Refuse to make or read bundles with an ezkl other than the one zkinfer pins."""
    if INSTALLED_EZKL_VERSION != EZKL_VERSION:
        raise ToolchainError(
            f"ezkl {INSTALLED_EZKL_VERSION} is installed, but zkinfer makes and reads bundles "
            f"with ezkl {EZKL_VERSION} (proof and key formats change between versions): "
            f"install ezkl=={EZKL_VERSION}"
        )


@dataclass(frozen=True)
class RunArgs:
    """Circuit choices zkinfer always sets (ezkl's defaults differ between its front ends)."""

    input_visibility: str = "public"
    output_visibility: str = "public"
    param_visibility: str = "fixed"
    variables: tuple[tuple[str, int], ...] = (("batch_size", 1),)
    #: Further ``PyRunArgs`` attributes, set after those above (``disable_freivalds``).
    extra: tuple[tuple[str, Any], ...] = ()

    def to_py(self) -> Any:
        """ezkl's ``PyRunArgs`` with every visibility set explicitly."""
        ra: Any = ezkl.PyRunArgs()  # its attributes are missing from ezkl's type stubs
        ra.input_visibility = self.input_visibility
        ra.output_visibility = self.output_visibility
        ra.param_visibility = self.param_visibility
        ra.variables = list(self.variables)
        for name, value in self.extra:
            setattr(ra, name, tuple(value) if isinstance(value, list) else value)
        return ra


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@contextmanager
def _captured_fds() -> Iterator[list[str]]:
    """Capture what ezkl says while it runs: its Python log records (pyo3-log) and whatever the
    Rust side writes to fds 1 and 2. Yields a list that receives the text."""
    sink: list[str] = []
    handler = _ListHandler(sink)
    logger = logging.getLogger("ezkl")
    if CHILD:
        logger.addHandler(handler)
        try:
            yield sink
        finally:
            logger.removeHandler(handler)
        return
    with _FD_LOCK, tempfile.TemporaryFile(mode="w+b") as tmp:
        logger.addHandler(handler)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield sink
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            logger.removeHandler(handler)
            tmp.seek(0)
            sink.append(tmp.read().decode("utf-8", "replace"))


def _clean(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()


def _run_in_own_loop(make: Callable[[], Any]) -> Any:
    """``asyncio.run`` the coroutine, from a worker thread if this thread already runs a loop
    (a notebook, or a caller inside an async service)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _call(what: str, fn: Callable[..., Any], **kwargs: Any) -> tuple[Any, str]:
    """Run one ezkl function with captured output; map every failure to :class:`CircuitError`.

    ezkl's async functions need a running event loop at call time, not just at await time, so
    every call is made from inside one.
    """

    async def in_loop() -> Any:
        result = fn(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    with _captured_fds() as log:
        try:
            result = _run_in_own_loop(in_loop)
        # ezkl raises bare RuntimeError for everything; a Rust panic arrives as pyo3's
        # PanicException, which derives from BaseException and must not escape as a crash
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            error: str | None = str(exc) if isinstance(exc, Exception) else f"panicked: {exc}"
        else:
            error = None
    text = "\n".join(log)
    if error is not None:
        raise CircuitError(f"ezkl {what} failed: {_clean(error)}", log=text) from None
    return result, text


def _unsupported_ops(log: str) -> list[str]:
    # tract says "Unknown op: Rem" for ops it parses but cannot run, and
    # "Unimplemented(Gelu)" for ONNX ops it has no translation for (Gelu, LpNormalization)
    found = re.findall(r"Unknown op: ([A-Za-z0-9_]+)|Unimplemented\(([A-Za-z0-9_]+)\)", log)
    return sorted({a or b for a, b in found})


def _heavy(step: str, **kwargs: Any) -> Any:
    """Run one of :data:`STEPS` through the enclosing runner, or a child process of its own."""
    runner = isolation.current_runner()
    if runner is not None:
        return runner.run(step, kwargs)
    with isolation.isolated() as own:
        return own.run(step, kwargs)


def gen_settings(model: Path, settings: Path, run_args: RunArgs) -> str:
    """Write ``settings.json`` for the model; name unsupported operators when ezkl cannot."""
    args = {
        "input_visibility": run_args.input_visibility,
        "output_visibility": run_args.output_visibility,
        "param_visibility": run_args.param_visibility,
        "variables": [list(v) for v in run_args.variables],
        "extra": [list(pair) for pair in run_args.extra],
    }
    return str(_heavy("gen_settings", model=str(model), settings=str(settings), run_args=args))


def _gen_settings(model: str, settings: str, run_args: dict[str, Any]) -> str:
    ra = RunArgs(
        input_visibility=run_args["input_visibility"],
        output_visibility=run_args["output_visibility"],
        param_visibility=run_args["param_visibility"],
        variables=tuple((str(k), int(v)) for k, v in run_args["variables"]),
        extra=tuple((str(k), v) for k, v in run_args.get("extra", [])),
    )
    try:
        _, log = _call(
            "gen_settings", ezkl.gen_settings, model=model, output=settings, py_run_args=ra.to_py()
        )
    except CircuitError as exc:
        ops = _unsupported_ops(f"{exc.log}\n{exc}")
        if ops:
            named = ", ".join(f"{op} (ONNX {_TRACT_TO_ONNX.get(op, op)})" for op in ops)
            raise ModelError(
                f"{model}: ezkl cannot compile the operator(s) {named}; replace them in the model "
                "(see ezkl's list of supported ONNX operators) and export again"
            ) from None
        # tract does not assume ONNX's attribute defaults (a Conv without strides)
        missing = re.search(r"missing required params: ([A-Za-z0-9_]+)", str(exc))
        if missing:
            raise ModelError(
                f"{model}: ezkl needs the attribute {missing.group(1)!r} written out on a node "
                "that leaves it to ONNX's default; export the model with explicit attributes "
                "(e.g. strides=[1, 1] on Conv and AveragePool)"
            ) from None
        raise
    return log


def calibrate(
    data: Path, model: Path, settings: Path, target: str, max_logrows: int | None = None
) -> str:
    """Choose scales and logrows from calibration data (``target``: resources or accuracy)."""
    kwargs: dict[str, Any] = {
        "data": str(data),
        "model": str(model),
        "settings": str(settings),
        "target": target,
    }
    if max_logrows is not None:
        kwargs["max_logrows"] = max_logrows
    return str(_heavy("calibrate_settings", **kwargs))


def compile_circuit(model: Path, compiled: Path, settings: Path) -> str:
    """Compile the ONNX model and settings into ezkl's circuit file."""
    return str(
        _heavy(
            "compile_circuit",
            model=str(model),
            compiled_circuit=str(compiled),
            settings_path=str(settings),
        )
    )


def gen_srs(path: Path, logrows: int) -> None:
    """Generate a development SRS. Its creator knows the toxic waste: never for real use."""
    _call("gen_srs", ezkl.gen_srs, srs_path=str(path), logrows=logrows)


def gen_witness(data: Path, compiled: Path, out: Path, vk: Path | None, srs: Path | None) -> Any:
    """Run the circuit on an input file and write the witness; return it as parsed JSON."""
    kwargs: dict[str, Any] = {"data": str(data), "model": str(compiled), "output": str(out)}
    if vk is not None:
        kwargs["vk_path"] = str(vk)
    if srs is not None:
        kwargs["srs_path"] = str(srs)
    _heavy("gen_witness", **kwargs)
    return json.loads(out.read_text())


def setup(compiled: Path, vk: Path, pk: Path, srs: Path) -> None:
    """Generate the proving and verifying keys for the compiled circuit."""
    ok = _heavy("setup", model=str(compiled), vk_path=str(vk), pk_path=str(pk), srs_path=str(srs))
    if ok is not True:
        raise CircuitError("ezkl setup reported failure", log="")


def prove(witness: Path, compiled: Path, pk: Path, proof: Path, srs: Path) -> Any:
    """Prove the witness; write and return the proof JSON."""
    _heavy(
        "prove",
        witness=str(witness),
        model=str(compiled),
        pk_path=str(pk),
        proof_path=str(proof),
        srs_path=str(srs),
    )
    return json.loads(proof.read_text())


def _plain(what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A step whose result is ezkl's return value when it is JSON-able (setup's ``True``)."""

    def step(**kwargs: Any) -> Any:
        result, log = _call(what, fn, **kwargs)
        return result if isinstance(result, bool) else log

    return step


#: The heavy steps a :class:`~prover.core.isolation.StepRunner` runs, by name; each takes
#: JSON-able keyword arguments and returns a JSON-able result (the log, or setup's verdict).
STEPS: dict[str, Callable[..., Any]] = {
    "gen_settings": _gen_settings,
    "calibrate_settings": _plain("calibrate_settings", ezkl.calibrate_settings),
    "compile_circuit": _plain("compile_circuit", ezkl.compile_circuit),
    "gen_witness": _plain("gen_witness", ezkl.gen_witness),
    "setup": _plain("setup", ezkl.setup),
    "prove": _plain("prove", ezkl.prove),
}


def run_step(step: str, kwargs: dict[str, Any]) -> Any:
    """Run one of :data:`STEPS` in this process (what a runner calls, here or in its child)."""
    if step not in STEPS:
        raise CircuitError(f"no ezkl step named {step!r}", log="")
    return STEPS[step](**kwargs)


def verify(proof: Path, settings: Path, vk: Path, srs: Path) -> tuple[bool, str]:
    """Verify a proof file. Fails closed: any exception or non-``True`` result is invalid.

    Returns the verdict and, when invalid, ezkl's reason.
    """
    try:
        ok, _ = _call(
            "verify",
            ezkl.verify,
            proof_path=str(proof),
            settings_path=str(settings),
            vk_path=str(vk),
            srs_path=str(srs),
        )
    except CircuitError as exc:
        return False, str(exc).removeprefix("ezkl verify failed: ")
    if ok is True:
        return True, ""
    return False, f"ezkl verify returned {ok!r}"


def render_evm_verifier(vk: Path, settings: Path, sol: Path, srs: Path) -> None:
    """Render the Solidity verifier for the circuit.

    ezkl writes the .sol file and then tries to download solc to compile it, which fails offline;
    the file is complete at that point, so that one error is expected and ignored. zkinfer compiles
    the Solidity itself with solc-js.
    """
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _call(
                "create_evm_verifier",
                ezkl.create_evm_verifier,
                vk_path=str(vk),
                settings_path=str(settings),
                sol_code_path=str(sol),
                abi_path=str(Path(tmp) / "abi.json"),
                srs_path=str(srs),
                reusable=False,
            )
        except CircuitError as exc:
            if "svm" not in str(exc) or not sol.is_file():
                raise
    text = sol.read_text() if sol.is_file() else ""
    if "function verifyProof" not in text:
        raise CircuitError(f"ezkl did not render a complete Solidity verifier at {sol}", log="")


def poseidon_hash(felts: list[str]) -> list[str]:
    """Poseidon hash of field elements (ezkl's hex encoding), as ezkl's hashed visibility does."""
    result, _ = _call("poseidon_hash", ezkl.poseidon_hash, message=felts)
    return list(result)


def float_to_felts(values: list[float], scale: int, input_type: str = "F32") -> list[str]:
    """Quantize floats exactly as ezkl quantizes inputs of ``input_type`` (hex field elements)."""
    kind = getattr(ezkl.PyInputType, input_type)
    return [str(ezkl.float_to_felt(input=v, scale=scale, input_type=kind)) for v in values]
