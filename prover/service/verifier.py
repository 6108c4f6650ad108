"""The service's own check of a proof, always in a child process.

ezkl redirects the process's file descriptors while it runs and a Rust panic can abort the whole
process, so neither the API nor the queue worker calls it in-process: they run
``python -m prover verify PROOF --bundle DIR --bundle-digest D --input IN --json`` and read its one
JSON object. Exit 0 is valid and 1 invalid (a verdict on the proof); anything else, a timeout or
unreadable output is the verifier's failure, never the provider's.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Verdict", "VerifierUnavailable", "verify_in_subprocess"]


class VerifierUnavailable(RuntimeError):
    """The verifier process crashed, timed out or answered nonsense: no verdict was reached."""


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str
    outputs: list[list[float]] | None
    timings: dict[str, float]


async def verify_in_subprocess(
    bundle_dir: Path,
    proof: dict[str, Any],
    *,
    bundle_digest: str | None = None,
    values: list[list[float]] | None = None,
    timeout_s: float = 120.0,
) -> Verdict:
    """The verdict of ``zkinfer verify`` on ``proof`` (and, with ``values``, that input)."""
    with tempfile.TemporaryDirectory(prefix="zkinfer-verify-") as tmp:
        proof_path = Path(tmp) / "proof.json"
        proof_path.write_text(json.dumps(proof))
        args = [sys.executable, "-m", "prover", "verify", str(proof_path)]
        args += ["--bundle", str(bundle_dir), "--json"]
        if bundle_digest:
            args += ["--bundle-digest", bundle_digest]
        if values is not None:
            input_path = Path(tmp) / "input.json"
            input_path.write_text(json.dumps({"input_data": values}))
            args += ["--input", str(input_path)]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise VerifierUnavailable(f"the verifier took longer than {timeout_s:g}s") from None
        except BaseException:  # cancelled (client gone, worker shutdown): no orphan verifier
            proc.kill()
            await proc.wait()
            raise
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if proc.returncode not in (0, 1) or not isinstance(doc, dict) or "valid" not in doc:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        error = doc.get("error") if isinstance(doc, dict) else None
        detail = error.get("message") if isinstance(error, dict) else tail[0]
        raise VerifierUnavailable(f"the verifier exited with {proc.returncode}: {detail}")
    valid = proc.returncode == 0 and doc["valid"] is True
    return Verdict(
        valid=valid,
        reason="" if valid else str(doc.get("reason") or "the proof does not verify"),
        outputs=doc.get("outputs") if valid else None,
        timings=dict(doc.get("timings") or {}),
    )
