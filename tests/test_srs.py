"""SRS provenance: ``ceremony`` only on a digest match; everything else is ``dev-unsafe``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prover.core import srs as srs_mod
from prover.core.hashing import sha256_file
from prover.core.progress import StepTimer
from prover.errors import SrsError
from prover.settings import get_settings
from tests.conftest import Compiled
from tests.helpers import REPO


def test_packaged_ceremony_table_covers_k1_to_26_with_sha256_digests() -> None:
    digests = srs_mod.ceremony_digests()
    assert sorted(digests) == list(range(1, 27))
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests.values())
    shared = REPO.parent / "shared" / "ceremony_srs_sha256.json"
    if shared.is_file():  # the project's copy must not drift from the published table
        published = json.loads(shared.read_text())["sha256_by_k"]
        assert {int(k): v for k, v in published.items()} == digests


def test_header_gives_logrows(mlp: Compiled) -> None:
    assert srs_mod.srs_logrows(mlp.bundle.path("kzg.srs")) == 15


def test_file_matching_the_published_digest_is_ceremony(
    mlp: Compiled, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = mlp.bundle.path("kzg.srs")
    digest = sha256_file(path)
    timer = StepTimer()
    choice = srs_mod.resolve_srs(15, srs_file=path, dev=False, timer=timer)
    assert choice.provenance == srs_mod.DEV_UNSAFE
    # Pretend the published table lists this file: the decision must follow the digest alone.
    table = {**srs_mod.ceremony_digests(), 15: digest}
    monkeypatch.setattr(srs_mod, "ceremony_digests", lambda: table)
    choice = srs_mod.resolve_srs(15, srs_file=path, dev=False, timer=timer)
    assert choice.provenance == srs_mod.CEREMONY and choice.sha256 == digest
    # ... and only for the k in the file's header
    table = {**srs_mod.ceremony_digests(), 15: "0" * 64, 16: digest}
    monkeypatch.setattr(srs_mod, "ceremony_digests", lambda: table)
    assert srs_mod.resolve_srs(15, srs_file=path, dev=False, timer=timer).provenance == "dev-unsafe"


def test_import_refuses_a_non_ceremony_file(mlp: Compiled) -> None:
    with pytest.raises(SrsError, match="only ceremony files are imported"):
        srs_mod.import_ceremony_srs(mlp.bundle.path("kzg.srs"))


def test_srs_smaller_than_the_circuit_is_refused(mlp: Compiled) -> None:
    with pytest.raises(SrsError, match="has logrows 15 but the circuit needs 16"):
        srs_mod.resolve_srs(16, srs_file=mlp.bundle.path("kzg.srs"), dev=False, timer=StepTimer())


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x00rest", b"\xff\xff\xff\x7f"])
def test_files_that_are_not_srs_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.srs"
    path.write_bytes(content)
    with pytest.raises(SrsError):
        srs_mod.resolve_srs(15, srs_file=path, dev=False, timer=StepTimer())


def test_imported_ceremony_srs_is_used_by_compile_without_flags(
    mlp: Compiled, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No real ceremony file can be downloaded here: the published table is patched to list this
    # file's digest, so everything downstream of the digest comparison runs for real.
    from prover import CompileOptions, compile_model, prove, verify
    from tests.helpers import model_files

    srs_file = mlp.bundle.path("kzg.srs")
    table = {**srs_mod.ceremony_digests(), 15: sha256_file(srs_file)}
    monkeypatch.setattr(srs_mod, "ceremony_digests", lambda: table)
    monkeypatch.setenv("ZKINFER_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    cached = srs_mod.import_ceremony_srs(srs_file)
    assert cached == tmp_path / "cache" / "srs" / "ceremony" / "kzg15.srs"
    onnx_path, sample, calibration = model_files("breast_cancer_mlp")
    compiled = compile_model(
        onnx_path, sample, tmp_path / "b", calibration=calibration, options=CompileOptions()
    )
    assert compiled.bundle.srs_provenance == "ceremony"
    prove(tmp_path / "b", sample, tmp_path / "p.json")
    verdict = verify(tmp_path / "p.json", tmp_path / "b")
    assert verdict.valid and verdict.srs_provenance == "ceremony" and verdict.warnings == []
