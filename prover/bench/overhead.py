"""The prove path's overhead: zkinfer against the bare ezkl calls it wraps, per reference model.

Two ways, on the same bundle and input:

- per process: ``zkinfer prove`` as a user runs it (start-up, imports, digest checks, input
  checks, witness, ONNX Runtime comparison, proof, self-verify, file write) against a process
  that calls only ``ezkl.gen_witness`` and ``ezkl.prove``;
- in one process: what a long-running worker pays per request, ``prove_values`` on a bundle
  loaded once, against ``gen_witness`` + ``prove`` called in a loop in one process. The two
  alternate, after one untimed warm-up call of each, so that neither gets a warmer cache.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from prover.bench.runner import Bundles, ModelFiles, measure, median, zkinfer_cmd
from prover.core.progress import StepTimer

__all__ = ["OverheadRow", "measure_overhead"]

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

_IN_PROCESS = """
import json, sys, tempfile, time
from pathlib import Path
import ezkl
from prover.core import isolation
from prover.core.bundle import PROVE_FILES, load_bundle
from prover.core.prove import prove_values
b, inp, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
values = json.loads(Path(inp).read_text())
bundle = load_bundle(Path(b), check=PROVE_FILES)
def bare(tmp):
    ezkl.gen_witness(data=inp, model=f"{b}/network.compiled", output=f"{tmp}/w.json",
                     vk_path=f"{b}/vk.key", srs_path=f"{b}/kzg.srs")
    ezkl.prove(witness=f"{tmp}/w.json", model=f"{b}/network.compiled", pk_path=f"{b}/pk.key",
               proof_path=f"{tmp}/p.json", srs_path=f"{b}/kzg.srs")
times = {"zkinfer": [], "bare": []}
# as `zkinfer worker` does: one ezkl child for the whole run, not one per proof
with (
    tempfile.TemporaryDirectory() as tmp,
    isolation.ChildProcess(isolation.memory_limit()) as child,
    isolation.isolated(child),
):
    for i in range(repeat + 1):
        t0 = time.perf_counter(); prove_values(bundle, values); t1 = time.perf_counter()
        bare(tmp); t2 = time.perf_counter()
        if i:
            times["zkinfer"].append(t1 - t0); times["bare"].append(t2 - t1)
print(json.dumps(times))
"""


@dataclass(frozen=True)
class OverheadRow:
    """One reference model: compile cost, sizes, and prove times of zkinfer beside bare ezkl."""

    model: str
    logrows: int
    compile_s: float
    compile_peak_mib: float
    pk_bytes: int
    prove_s: float
    bare_prove_s: float
    ratio: float
    prove_peak_mib: float
    bare_prove_peak_mib: float
    in_process_prove_s: float | None
    in_process_bare_s: float | None
    in_process_ratio: float | None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else round(a / b, 3)


def measure_overhead(
    model: ModelFiles,
    bundles: Bundles,
    work: Path,
    *,
    repeat: int,
    in_process: bool,
    timer: StepTimer,
) -> OverheadRow:
    """Compile ``model`` from cold (shared with the other sections) and time both prove paths."""
    with timer.step(f"{model.name}: compile (cold)"):
        compiled = bundles.get(model)
    root, proof = compiled.root, work / f"{model.name}-proof.json"
    proves, bares, peak, bare_peak = [], [], 0.0, 0.0
    with timer.step(f"{model.name}: prove x{repeat} per process, zkinfer and bare ezkl"):
        for _ in range(repeat):
            ran = measure(zkinfer_cmd("prove", root, "--input", model.sample, "--out", proof))
            proves.append(ran.wall_s)
            peak = max(peak, ran.peak_mib)
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(tmp) / "input.json"
                data.write_text(model.sample.read_text())
                ran = measure([sys.executable, "-c", _BARE_PROVE, str(root), str(data), tmp])
                bares.append(ran.wall_s)
                bare_peak = max(bare_peak, ran.peak_mib)
    zk_in = bare_in = None
    if in_process:
        with timer.step(f"{model.name}: prove x{repeat} in one process, zkinfer and bare ezkl"):
            ran = measure(
                [sys.executable, "-c", _IN_PROCESS, str(root), str(model.sample), str(repeat)]
            )
            times = json.loads(ran.stdout.strip().splitlines()[-1])
            zk_in, bare_in = median(times["zkinfer"]), median(times["bare"])
    prove_s, bare_s = median(proves), median(bares)
    return OverheadRow(
        model=model.name,
        logrows=compiled.logrows,
        compile_s=compiled.compile_s,
        compile_peak_mib=compiled.compile_peak_mib,
        pk_bytes=compiled.pk_bytes,
        prove_s=prove_s,
        bare_prove_s=bare_s,
        ratio=_ratio(prove_s, bare_s) or 0.0,
        prove_peak_mib=round(peak),
        bare_prove_peak_mib=round(bare_peak),
        in_process_prove_s=zk_in,
        in_process_bare_s=bare_in,
        in_process_ratio=_ratio(zk_in, bare_in),
    )
