"""What a long-running prover does not repeat, and what it still catches.

A bundle's files are hashed once per process per file identity (device, inode, size, mtime,
ctime): a second proof with the same bundle reads no key again, and a key written, replaced or
touched after the first proof is hashed again and refused. ``zkinfer verify`` imports none of the
libraries only other commands need (nor numpy and onnx, which only the ONNX Runtime
reference of prove and compile needs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.core import bundle as b
from prover.core.hashing import RACY_MARGIN_NS, bytes_hashed
from prover.core.prove import prove_values
from prover.errors import ArtifactError
from tests.conftest import Compiled
from tests.helpers import REPO

pytestmark = pytest.mark.slow


def _settled_copy(c: Compiled, tmp_path: Path) -> Path:
    """A copy of the bundle old enough for its digests to be remembered."""
    copy = tmp_path / "bundle"
    shutil.copytree(c.bundle.root, copy)
    time.sleep(RACY_MARGIN_NS / 1e9 + 0.2)
    return copy


def _values(c: Compiled) -> list[list[float]]:
    values: list[list[float]] = json.loads(c.sample.read_text())["input_data"]
    return values


def _flip_last_byte(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))


def test_a_second_load_reads_no_file_and_a_key_written_in_place_after_a_proof_is_refused(
    tiny: Compiled, tmp_path: Path
) -> None:
    root = _settled_copy(tiny, tmp_path)
    first = prove_values(root, _values(tiny))
    pk = root / b.PK
    before = bytes_hashed()
    b.load_bundle(root, check=b.PROVE_FILES)
    assert bytes_hashed() == before  # every digest served from memory: nothing changed

    stat = pk.stat()
    _flip_last_byte(pk)
    # even with its size and modification time put back, the write changed the key's ctime
    os.utime(pk, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert pk.stat().st_size == stat.st_size and pk.stat().st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(ArtifactError, match=r"pk\.key: digest mismatch"):
        prove_values(root, _values(tiny))
    assert bytes_hashed() - before >= stat.st_size  # the key was read again
    assert first.outputs is not None


def test_a_key_replaced_by_rename_after_a_proof_is_refused(tiny: Compiled, tmp_path: Path) -> None:
    root = _settled_copy(tiny, tmp_path)
    prove_values(root, _values(tiny))
    pk = root / b.PK
    forged = tmp_path / "pk.forged"
    shutil.copy2(pk, forged)  # same size and modification time, another inode
    _flip_last_byte(forged)
    os.replace(forged, pk)
    with pytest.raises(ArtifactError, match=r"pk\.key: digest mismatch"):
        prove_values(root, _values(tiny))


def test_a_file_written_just_before_it_was_hashed_is_hashed_again(
    tiny: Compiled, tmp_path: Path
) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny.bundle.root, copy)  # fresh: within the racy margin
    b.load_bundle(copy, check=(b.VK,))
    before = bytes_hashed()
    b.load_bundle(copy, check=(b.VK,))
    assert bytes_hashed() - before == (copy / b.VK).stat().st_size


_MODULES = """
import runpy, sys
sys.argv = ["zkinfer", *sys.argv[1:]]
try:
    runpy.run_module("prover", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("MODULES", " ".join(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
sys.exit(code)
"""
# the chain, service and worker libraries, and what only proving and compiling run (the
# reference in ONNX Runtime; numpy and onnx come with it)
_NOT_FOR_VERIFY = (
    "web3",
    "fastapi",
    "httpx",
    "uvicorn",
    "psycopg",
    "onnxruntime",
    "torch",
    "onnx",
    "numpy",
)


def test_local_verify_imports_none_of_the_other_commands_libraries(tiny: Compiled) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _MODULES, "verify", str(tiny.proof), "--bundle", tiny.bundle.root],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES "))
    loaded = set(line.split()[1:])
    assert "ezkl" in loaded and "prover" in loaded  # the probe saw the verification itself
    assert loaded.isdisjoint(_NOT_FOR_VERIFY), sorted(loaded & set(_NOT_FOR_VERIFY))
