"""Session-scoped artifacts: each reference model is compiled and proved once per test run.

Everything here is real: ezkl builds the circuits, keys and proofs, solc-js compiles the verifiers.
The development SRS is cached under .zkinfer/test-home so repeated runs skip its generation; the
session's data directory (deployments, cursors) is .zkinfer/test-data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from prover import CompileOptions, compile_model, prove
from prover.core.bundle import Bundle
from prover.settings import get_settings
from tests.helpers import REPO, model_files
from tests.helpers.chain import Anvil, run_anvil
from tests.helpers.service import temporary_database

# The session's cache, whose srs/ holds the development SRS files that every test shares, and its
# data directory, apart: a test that needs a data directory of its own sets ZKINFER_HOME alone, and
# a cache that held the session's deployments and cursors would look to it like an earlier
# version's state, which every command moves into the data directory (core/paths.py).
os.environ.setdefault("ZKINFER_CACHE_DIR", str(REPO / ".zkinfer" / "test-home"))
os.environ.setdefault("ZKINFER_HOME", str(REPO / ".zkinfer" / "test-data"))


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings are read once per process: a test that changes the environment gets them anew."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@dataclass(frozen=True)
class Compiled:
    """A compiled reference model, its sample input and a proof of that sample."""

    name: str
    bundle: Bundle
    sample: Path
    proof: Path


def _build(
    tmp_path_factory: pytest.TempPathFactory, name: str, tag: str, **options: str
) -> Compiled:
    onnx, sample, calibration = model_files(name)
    work = tmp_path_factory.mktemp(f"{name}-{tag}")
    result = compile_model(
        onnx,
        sample,
        work / "bundle",
        calibration=calibration,
        options=CompileOptions(dev_srs=True, **options),  # type: ignore[arg-type]
    )
    proof = work / "proof.json"
    prove(work / "bundle", sample, proof)
    return Compiled(name, result.bundle, sample, proof)


@pytest.fixture(scope="session")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    """The breast-cancer MLP with public inputs and outputs, fixed params."""
    return _build(tmp_path_factory, "breast_cancer_mlp", "public")


@pytest.fixture(scope="session")
def mlp_hashed(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    """The breast-cancer MLP with Poseidon-hashed inputs."""
    return _build(tmp_path_factory, "breast_cancer_mlp", "hashed", input_visibility="hashed")


@pytest.fixture(scope="session")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    """The digits CNN with public inputs and outputs."""
    return _build(tmp_path_factory, "digits_cnn", "public")


@pytest.fixture(scope="session")
def attention(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    """The digits attention block (softmax, layer norm)."""
    return _build(tmp_path_factory, "digits_attention", "public")


@pytest.fixture(scope="module")
def private_pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database of the test module's own, dropped after the module (the
    tests under tests/service/ share one per session instead: their ``pg_url``)."""
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """A real anvil node (chain id 31337) for the whole session."""
    with run_anvil() as node:
        yield node


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    """A one-Gemm model built in the test, compiled at logrows 12: fast proofs, small keys."""
    from tests.helpers.tiny import TINY_MAX_LOGROWS, write_tiny_model

    work = tmp_path_factory.mktemp("tiny")
    onnx, sample, calibration = write_tiny_model(work / "model")
    result = compile_model(
        onnx,
        sample,
        work / "bundle",
        calibration=calibration,
        options=CompileOptions(dev_srs=True, max_logrows=TINY_MAX_LOGROWS),
    )
    proof = work / "proof.json"
    prove(work / "bundle", sample, proof)
    return Compiled("tiny", result.bundle, sample, proof)


@pytest.fixture(scope="session")
def tiny_batch(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    """The tiny model with a symbolic batch axis compiled for 4 slots (``TINY_BATCH``), public
    inputs and outputs, logrows 12 at most; ``sample`` fills every slot (tiny_input 0 to 3)."""
    from tests.helpers.tiny import TINY_BATCH, TINY_MAX_LOGROWS, write_tiny_model

    work = tmp_path_factory.mktemp("tiny-batch")
    onnx, sample, calibration = write_tiny_model(work / "model", batch=TINY_BATCH)
    result = compile_model(
        onnx,
        sample,
        work / "bundle",
        calibration=calibration,
        options=CompileOptions(dev_srs=True, max_logrows=TINY_MAX_LOGROWS, batch_size=TINY_BATCH),
    )
    proof = work / "proof.json"
    prove(work / "bundle", sample, proof)
    return Compiled("tiny_batch", result.bundle, sample, proof)
