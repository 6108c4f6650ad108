"""Hostile and oversized models: refused by their static sizes, and ezkl crashes become errors."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from prover.core import ezkl_backend, isolation
from prover.errors import CircuitError, UsageError
from tests.helpers import model_files, write_json, zkinfer

# the reference MLP has a symbolic batch axis: ezkl needs it fixed
MLP_ARGS = ezkl_backend.RunArgs(variables=(("batch", 1),))


def _expand_bomb(folder: Path) -> tuple[Path, Path]:
    """A model of about 200 bytes that expands its input to 10^6 x 10^6 x 30, then sums it."""
    shape = numpy_helper.from_array(np.array([10**6, 10**6, 30], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Expand", ["x", "shape"], ["big"], name="blow_up"),
            helper.make_node("ReduceSum", ["big"], ["y"], keepdims=0),
        ],
        "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 30])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    path = folder / "bomb.onnx"
    onnx.save(model, path)
    assert path.stat().st_size < 300
    return path, write_json(folder / "in.json", {"input_data": [[0.1] * 30]})


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_expand_bomb_is_refused_before_ezkl_naming_the_node_and_size(tmp_path: Path) -> None:
    model, sample = _expand_bomb(tmp_path)
    result = zkinfer(
        "compile", model, "--sample", sample, "--out", tmp_path / "out", "--dev-srs", "--json"
    )
    assert result.code == 2, result.stderr
    message = result.json["error"]["message"]
    assert "'blow_up' (Expand)" in message and "30,000,000,000,000 elements" in message
    assert "Traceback" not in result.stderr
    assert _leftovers(tmp_path, {"bomb.onnx", "in.json"}) == []


def test_ezkl_aborting_in_its_child_is_a_clean_error_and_leaves_no_temp_folder(
    tmp_path: Path,
) -> None:
    # past the static bound (raised here on purpose) ezkl itself aborts: SIGABRT in the child
    model, sample = _expand_bomb(tmp_path)
    result = zkinfer(
        "compile",
        *(model, "--sample", sample, "--out", tmp_path / "out", "--dev-srs", "--json"),
        env={"ZKINFER_MAX_TENSOR_ELEMENTS": str(10**18)},
    )
    assert result.code == 3, result.stderr
    message = result.json["error"]["message"]
    assert "ezkl gen_settings crashed" in message and "SIGABRT" in message
    assert "memory allocation of" in message
    assert "Traceback" not in result.stderr
    assert _leftovers(tmp_path, {"bomb.onnx", "in.json"}) == []


def test_a_step_over_the_memory_limit_stops_cleanly(tmp_path: Path) -> None:
    # key setup of the MLP needs about 1 GB of address space; 300 MB is not enough
    onnx_path, sample, calibration = model_files("breast_cancer_mlp")
    work = tmp_path / "work"
    work.mkdir()
    result = zkinfer(
        *("compile", onnx_path, "--sample", sample, "--calibration", calibration),
        *("--out", work / "bundle", "--dev-srs", "--json"),
        env={isolation.MEMORY_ENV: "300M"},
    )
    assert result.code == 3, result.stderr
    message = result.json["error"]["message"]
    assert "crashed" in message and "memory limit 0.3 GiB" in message
    assert _leftovers(work, set()) == []


@pytest.mark.parametrize("value", ["lots", "1M", "-5G"])
def test_a_bad_memory_limit_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(isolation.MEMORY_ENV, value)
    with pytest.raises(UsageError, match=isolation.MEMORY_ENV):
        isolation.memory_limit()


@pytest.mark.parametrize(
    ("value", "limit"),
    [("8G", 8 << 30), ("512MiB", 512 << 20), ("1gb", 1 << 30), ("none", None), ("0", None)],
)
def test_memory_limit_parses_sizes(
    monkeypatch: pytest.MonkeyPatch, value: str, limit: int | None
) -> None:
    monkeypatch.setenv(isolation.MEMORY_ENV, value)
    assert isolation.memory_limit() == limit


def test_memory_limit_defaults_to_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(isolation.MEMORY_ENV, raising=False)
    assert isolation.memory_limit() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_steps_of_one_block_share_one_child_and_a_crash_restarts_it(tmp_path: Path) -> None:
    model, _ = _expand_bomb(tmp_path)
    with isolation.ChildProcess(limit=None) as child, isolation.isolated(child):
        with pytest.raises(CircuitError, match="crashed"):
            ezkl_backend.gen_settings(model, tmp_path / "s.json", ezkl_backend.RunArgs())
        # the next step gets a fresh child: a small, valid model compiles its settings
        onnx_path, _, _ = model_files("breast_cancer_mlp")
        ezkl_backend.gen_settings(onnx_path, tmp_path / "ok.json", MLP_ARGS)
        first = child.pid
        ezkl_backend.gen_settings(onnx_path, tmp_path / "ok2.json", MLP_ARGS)
        assert child.pid == first is not None
    assert (tmp_path / "ok2.json").is_file()


def test_a_child_started_early_and_never_used_is_killed_at_close_and_one_used_exits(
    tmp_path: Path,
) -> None:
    idle = isolation.ChildProcess(limit=None)
    idle.start()
    process = idle._proc
    assert process is not None and process.poll() is None
    idle.close()  # a refused bundle or input: the child that was loading ezkl is not waited for
    assert process.returncode == -signal.SIGKILL
    used = isolation.ChildProcess(limit=None)
    used.start()
    onnx_path, _, _ = model_files("breast_cancer_mlp")
    with isolation.isolated(used):
        ezkl_backend.gen_settings(onnx_path, tmp_path / "s.json", MLP_ARGS)
    process = used._proc
    assert process is not None
    used.close()  # a child that ran steps ends by itself when its request pipe closes
    assert process.returncode == 0
