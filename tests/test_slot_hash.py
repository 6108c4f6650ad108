"""Hashed inputs in a batch: ezkl is given the slotted graph (one graph input per slot), so each
slot's input has its own Poseidon hash, and one request's input is checked on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from prover import (
    CompileOptions,
    ProvenBatch,
    compile_model,
    prove_batch,
    prove_values,
    verify,
    verify_values,
)
from prover.core import bundle as b
from prover.core import ezkl_backend
from prover.core.expected import expected_input_instances, input_felts
from prover.core.hashing import sha256_file
from prover.core.onnx_model import run_onnxruntime
from prover.core.slot_graph import slotted_graph, to_slot_inputs
from prover.core.slot_layout import Segment
from prover.core.slots import check_slot_inputs, padding_values
from prover.errors import ArtifactError, ModelError
from tests.helpers import write_json, zkinfer
from tests.helpers.tiny import (
    TINY_BATCH,
    TINY_HASHED_VERIFIER_LIMIT,
    TINY_MAX_LOGROWS,
    tiny_input,
    write_tiny_model,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The tiny batch model's ONNX (symbolic batch axis), a 4-row sample and calibration."""
    return write_tiny_model(tmp_path_factory.mktemp("slot-hash") / "m", batch=TINY_BATCH)


def _compile(model: tuple[Path, Path, Path], out: Path, batch: int = TINY_BATCH) -> b.Bundle:
    onnx_path, sample, cal = model
    options = CompileOptions(
        dev_srs=True,
        max_logrows=TINY_MAX_LOGROWS,
        batch_size=batch,
        input_visibility="hashed",
        verifier_limit=TINY_HASHED_VERIFIER_LIMIT,
    )
    return compile_model(onnx_path, sample, out, calibration=cal, options=options).bundle


@pytest.fixture(scope="module")
def hashed_batch(
    model: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> b.Bundle:
    """The tiny model compiled for 4 slots with hashed inputs."""
    return _compile(model, tmp_path_factory.mktemp("hashed-batch") / "bundle")


@pytest.fixture(scope="module")
def padded(hashed_batch: b.Bundle) -> ProvenBatch:
    """Tiny inputs 5, 6 and 7 in slots 0, 2 and 3; slot 1 is padding."""
    return prove_batch(hashed_batch, [tiny_input(5), None, tiny_input(6), tiny_input(7)])


def _hash(bundle: b.Bundle, values: Any) -> str:
    """The Poseidon hash of one slot's input quantized at the bundle's input scale, computed
    here from ezkl's primitives (not through the code under test)."""
    (felts,) = input_felts(bundle, check_slot_inputs(bundle, values))
    (digest,) = ezkl_backend.poseidon_hash(felts)
    return digest


# -- the bundle -----------------------------------------------------------------------------


def test_each_slot_of_a_hashed_batch_owns_one_hash(hashed_batch: b.Bundle) -> None:
    m = hashed_batch.manifest
    raw = json.loads((hashed_batch.root / b.MANIFEST).read_text())
    assert raw["slotted_inputs"] is True
    # the model's input as the user sees it; the graph ezkl compiled had one input per slot
    assert [(t.name, t.shape) for t in m.inputs] == [("x", (TINY_BATCH, 3))]
    assert len(m.circuit.input_scales) == 1
    settings = json.loads(hashed_batch.path(b.SETTINGS).read_text())
    assert len(settings["model_input_scales"]) == TINY_BATCH
    assert (m.instances.input.visibility, m.instances.input.count) == ("hashed", TINY_BATCH)
    slots = m.slots
    assert slots is not None and slots.contiguous
    assert slots.input == tuple((Segment(s, 1),) for s in range(TINY_BATCH))
    assert slots.output == tuple((Segment(4 + 2 * s, 2),) for s in range(TINY_BATCH))
    assert (slots.per_slot_input_count, slots.per_slot_output_count) == (1, 2)
    assert raw["slots"] == slots.to_json()


def test_a_manifest_hiding_the_slotted_graph_is_refused(
    hashed_batch: b.Bundle, tmp_path: Path
) -> None:
    import shutil

    root = Path(shutil.copytree(hashed_batch.root, tmp_path / "bundle"))
    raw = json.loads((root / b.MANIFEST).read_text())
    del raw["slotted_inputs"]
    raw["slots"] = None
    (root / b.MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match=r"disagree with settings\.json"):
        b.load_bundle(root, check=b.VERIFY_FILES)


# -- proving and verifying ------------------------------------------------------------------


def test_each_slots_hash_is_the_hash_of_its_own_input(
    padded: ProvenBatch, hashed_batch: b.Bundle
) -> None:
    m = hashed_batch.manifest
    instances = padded.document["instances"][0]
    given: dict[int, Any] = {
        0: tiny_input(5),
        1: padding_values(m),
        2: tiny_input(6),
        3: tiny_input(7),
    }
    for slot, values in given.items():
        want = _hash(hashed_batch, values)
        assert m.slots is not None and m.slots.input_instances(instances, slot) == [want]
        assert expected_input_instances(hashed_batch, check_slot_inputs(m, values)) == [want]
    assert len(set(padded.input_hash or [])) == TINY_BATCH
    assert padded.padding == (1,)


def test_a_slots_hash_equals_a_batch_1_hashed_proof_of_the_same_input(
    padded: ProvenBatch,
    hashed_batch: b.Bundle,
    model: tuple[Path, Path, Path],
    tmp_path: Path,
) -> None:
    cal = model[2]
    one = write_tiny_model(tmp_path / "m1")  # the same Gemm with a fixed batch of 1
    single = compile_model(
        one[0],
        one[1],
        tmp_path / "bundle",
        calibration=cal,
        options=CompileOptions(
            dev_srs=True,
            max_logrows=TINY_MAX_LOGROWS,
            input_visibility="hashed",
            verifier_limit=TINY_HASHED_VERIFIER_LIMIT,
        ),
    ).bundle
    assert single.manifest.circuit.input_scales == hashed_batch.manifest.circuit.input_scales
    alone = prove_values(single, tiny_input(6))
    assert alone.input_hash == [padded.document["instances"][0][2]]


def test_verify_one_slot_of_a_hashed_batch(padded: ProvenBatch, hashed_batch: b.Bundle) -> None:
    root = hashed_batch.root
    right = verify_values(padded.document, root, values=tiny_input(6), slot=2)
    assert right.valid and right.slot == 2 and right.outputs == padded.slot_outputs[2]
    for slot, values in ((2, tiny_input(5)), (0, tiny_input(6)), (1, tiny_input(1))):
        wrong = verify_values(padded.document, root, values=values, slot=slot)
        assert not wrong.valid and f"in slot {slot}" in wrong.reason
    padding = padding_values(hashed_batch.manifest)
    assert verify_values(padded.document, root, values=padding, slot=1).valid


def test_verify_slot_of_a_hashed_batch_on_the_command_line(
    padded: ProvenBatch, hashed_batch: b.Bundle, tmp_path: Path
) -> None:
    root = hashed_batch.root
    proof = write_json(tmp_path / "batch.json", padded.document)
    mine = write_json(tmp_path / "mine.json", tiny_input(7))
    ok = zkinfer("verify", proof, "--bundle", root, "--slot", "3", "--input", mine, "--json")
    assert ok.code == 0, ok.stderr
    assert ok.json["valid"] and ok.json["slot"] == 3
    assert ok.json["outputs"] == padded.slot_outputs[3]
    bad = zkinfer("verify", proof, "--bundle", root, "--slot", "0", "--input", mine, "--json")
    assert bad.code == 1 and not bad.json["valid"] and "in slot 0" in bad.json["reason"]


def test_a_whole_batch_input_file_keeps_the_models_format(
    hashed_batch: b.Bundle, model: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, sample, _ = model  # one list for input x, holding its 4 rows
    proof = tmp_path / "proof.json"
    run = zkinfer("prove", hashed_batch.root, "--input", sample, "--out", proof, "--json")
    assert run.code == 0, run.stderr
    result = verify(proof, hashed_batch.root, input_path=sample)
    assert result.valid
    rows = json.loads(sample.read_text())["input_data"][0]
    for s in range(TINY_BATCH):
        slot = {"input_data": [rows[3 * s : 3 * s + 3]]}
        doc = json.loads(proof.read_text())
        assert verify_values(doc, hashed_batch.root, values=slot, slot=s).valid


# -- the rewritten graph --------------------------------------------------------------------


def _two_input_model(path: Path) -> bytes:
    """``y = x + z`` and ``w = x * 2``, inputs of shape [batch, 2]."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "z"], ["y"]),
            helper.make_node("Mul", ["x", "two"], ["w"]),
        ],
        "two",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 2]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, ["batch", 2]),
        ],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path.read_bytes()


def test_the_slotted_graph_is_deterministic_slot_major_and_computes_the_same(
    tmp_path: Path,
) -> None:
    data = _two_input_model(tmp_path / "two.onnx")
    rewritten = slotted_graph(data, 3)
    assert rewritten == slotted_graph(data, 3) != slotted_graph(data, 2)
    graph = onnx.load_model_from_string(rewritten).graph
    names = [v.name for v in graph.input]
    assert names == [f"{n}__slot{s}" for s in range(3) for n in ("x", "z")]
    assert all([d.dim_value for d in v.type.tensor_type.shape.dim] == [1, 2] for v in graph.input)
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    z = -np.arange(6, dtype=np.float64).reshape(3, 2) / 4
    (tmp_path / "slotted.onnx").write_bytes(rewritten)
    want = run_onnxruntime(tmp_path / "two.onnx", [x, z], ["x", "z"])
    split = to_slot_inputs([x.reshape(-1).tolist(), z.reshape(-1).tolist()], [2, 2], 3)
    got = run_onnxruntime(
        tmp_path / "slotted.onnx", [np.asarray(v).reshape(1, 2) for v in split], names
    )
    assert all(np.array_equal(a, c) for a, c in zip(want, got, strict=True))


def test_several_calibration_samples_keep_their_order_within_each_slot() -> None:
    # two samples of a batch of 2, rows of 1 value: sample 0 = [a, b], sample 1 = [c, d]
    assert to_slot_inputs([["a", "b", "c", "d"]], [1], 2) == [["a", "c"], ["b", "d"]]
    assert to_slot_inputs([[1, 2, 3, 4], [5, 6]], [2, 1], 2) == [[1, 2], [5], [3, 4], [6]]


def test_a_name_the_rewrite_needs_that_the_graph_uses_is_refused(tmp_path: Path) -> None:
    data = _two_input_model(tmp_path / "two.onnx")
    model = onnx.load_model_from_string(data)
    model.graph.node[0].output[0] = "x__slot1"
    model.graph.output[0].name = "x__slot1"
    with pytest.raises(ModelError, match="x__slot1"):
        slotted_graph(model.SerializeToString(), 2)


def test_the_bundle_records_the_models_own_onnx_and_is_reused_for_it(
    hashed_batch: b.Bundle, model: tuple[Path, Path, Path]
) -> None:
    # network.onnx is the model as given (the slotted graph is rebuilt from it, never stored),
    # so compiling the same model again finds this bundle and keeps its model id
    assert hashed_batch.path(b.ONNX).read_bytes() == model[0].read_bytes()
    assert hashed_batch.manifest.onnx.sha256 == sha256_file(model[0])
    again = compile_model(
        model[0],
        model[1],
        hashed_batch.root,
        calibration=model[2],
        options=CompileOptions(
            dev_srs=True,
            max_logrows=TINY_MAX_LOGROWS,
            batch_size=TINY_BATCH,
            input_visibility="hashed",
            verifier_limit=TINY_HASHED_VERIFIER_LIMIT,
        ),
    )
    assert again.reused and again.bundle.model_id == hashed_batch.model_id


def test_every_manifest_field_of_a_hashed_batch_is_refused_when_edited_or_is_harmless(
    hashed_batch: b.Bundle, padded: ProvenBatch, tmp_path: Path
) -> None:
    from tests.test_manifest_fields import _edit, _harmless, _leaves, _linked_copy, _rewrite

    root = hashed_batch.root
    manifest = json.loads((root / b.MANIFEST).read_text())
    copy = _linked_copy(root, tmp_path / "bundle")
    proof = write_json(tmp_path / "proof.json", padded.document)
    accepted = []
    for path in _leaves(manifest):
        _rewrite(copy, _edit(manifest, path))
        try:
            b.load_bundle(copy, check=b.FILES)
        except ArtifactError:
            continue
        if not _harmless(path):
            accepted.append(".".join(map(str, path)))
            continue
        result = verify_values(padded.document, copy, values=tiny_input(6), slot=2)
        assert result.valid and verify(proof, copy).valid, path
    assert accepted == [], f"edited fields that nothing refuses: {accepted}"
