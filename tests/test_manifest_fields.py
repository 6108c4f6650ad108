"""Every manifest field is backed by a digested file, derived from one, or provably harmless;
the model id binds the circuit; the verifier must be the one for the bundle's keys and SRS."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prover import verify
from prover.chain.keys import PRIVATE_KEY_ENV
from prover.core import bundle as b
from prover.core import ezkl_backend
from prover.core.hashing import sha256_file
from prover.core.manifest import model_id_for
from prover.core.verifier_check import check_verifier_matches_keys
from prover.errors import ArtifactError
from tests.conftest import Compiled
from tests.helpers import model_files, own_home, write_json, zkinfer
from tests.helpers.chain import KEYS, OWNER, Anvil

#: Records for people and the prove-time range guard: edited, they change no verdict and no
#: decoded value (shown below for each); the bundle digest still pins them.
HARMLESS = {
    ("created_at",),
    ("zkinfer_version",),
    ("timings",),
    ("sample_fidelity",),
    ("srs", "note"),
    ("inputs", "*", "range"),
}

Path_ = tuple[str | int, ...]  # keys and list indexes from the root


def _leaves(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*prefix, key))
    elif isinstance(node, list) and node:
        for i, value in enumerate(node):
            yield from _leaves(value, (*prefix, i))
    else:
        yield prefix


def _harmless(path: Path_) -> bool:
    general = tuple("*" if isinstance(p, int) else p for p in path)
    return any(general[: len(h)] == h for h in HARMLESS)


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 1.5
    if isinstance(value, str):
        return value + "0"
    if value is None:
        return 1
    return [*value, 1] if isinstance(value, list) else {"x": 1}


def _edit(manifest: dict[str, Any], path: Path_) -> dict[str, Any]:
    edited: dict[str, Any] = json.loads(json.dumps(manifest))
    node: Any = edited
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = _changed(node[path[-1]])
    return edited


def _linked_copy(root: Path, dest: Path) -> Path:
    """A copy of a bundle whose files are hard links (no 138 MB copies), manifest rewritten."""
    dest.mkdir()
    for name in b.FILES:
        os.link(root / name, dest / name)
    shutil.copyfile(root / b.MANIFEST, dest / b.MANIFEST)
    return dest


def _rewrite(copy: Path, manifest: dict[str, Any]) -> None:
    (copy / b.MANIFEST).write_text(json.dumps(manifest))


def _consistent(manifest: dict[str, Any], copy: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Record new digests and sizes for ``names`` and recompute the model id, as a forger would."""
    for name in names:
        manifest["files"][name] = sha256_file(copy / name)
        manifest["sizes"][name] = (copy / name).stat().st_size
    manifest["model_id"] = model_id_for(
        manifest["onnx"]["sha256"],
        manifest["run_args"],
        manifest["calibration_sha256"],
        manifest["files"],
    )
    return manifest


def test_every_manifest_field_is_refused_when_edited_or_is_harmless(
    mlp: Compiled, tmp_path: Path
) -> None:
    root = mlp.bundle.root
    manifest = json.loads((root / b.MANIFEST).read_text())
    copy = _linked_copy(root, tmp_path / "bundle")
    genuine = verify(mlp.proof, root)
    trailing = json.loads(mlp.proof.read_text())
    trailing["proof"].append(0)
    trailing.pop("hex_proof")
    longer = write_json(tmp_path / "longer.json", trailing)
    accepted: list[str] = []
    harmless_seen = 0
    for path in _leaves(manifest):
        _rewrite(copy, _edit(manifest, path))
        pk = any(str(p) == b.PK for p in path)
        names = b.FILES if pk else tuple(n for n in b.FILES if n != b.PK)
        try:
            b.load_bundle(copy, check=names)
        except ArtifactError:
            continue
        if not _harmless(path):
            accepted.append(".".join(map(str, path)))
            continue
        harmless_seen += 1
        result = verify(mlp.proof, copy)
        assert result.valid and result.outputs == genuine.outputs, path
        assert not verify(longer, copy).valid, path
    assert accepted == [], f"edited fields that nothing refuses: {accepted}"
    assert harmless_seen >= 6


def test_a_longer_proof_length_is_refused_without_a_verifier_that_says_so(
    mlp: Compiled, tmp_path: Path
) -> None:
    # the reviewer's case: one byte more in the manifest let a proof with a trailing byte verify
    manifest = json.loads((mlp.bundle.root / b.MANIFEST).read_text())
    manifest["proof_bytes"] += 1
    copy = _linked_copy(mlp.bundle.root, tmp_path / "bundle")
    _rewrite(copy, manifest)
    doc = json.loads(mlp.proof.read_text())
    doc["proof"].append(0)
    doc.pop("hex_proof")
    result = zkinfer("verify", write_json(tmp_path / "p.json", doc), "--bundle", copy, "--json")
    assert result.code == 3, result.stdout
    assert "proof_bytes 3073 disagrees with Verifier.sol (3072)" in result.json["error"]["message"]


@pytest.mark.parametrize("name", b.FILES)
def test_a_consistently_swapped_file_changes_the_model_id(
    mlp: Compiled, tmp_path: Path, name: str
) -> None:
    copy = _linked_copy(mlp.bundle.root, tmp_path / "bundle")
    (copy / name).unlink()
    shutil.copyfile(mlp.bundle.root / name, copy / name)
    with (copy / name).open("ab") as f:
        f.write(b"\n")
    manifest = json.loads((copy / b.MANIFEST).read_text())
    manifest["files"][name] = sha256_file(copy / name)
    manifest["sizes"][name] = (copy / name).stat().st_size
    if name == b.ONNX:
        manifest["onnx"]["sha256"] = manifest["files"][name]
    _rewrite(copy, manifest)
    with pytest.raises(ArtifactError, match="model_id does not match"):
        b.load_bundle(copy, check=(name,))
    # recomputed, the id is another model's: what a client pinned no longer matches
    assert _consistent(manifest, copy, (name,))["model_id"] != mlp.bundle.model_id


@pytest.fixture(scope="module")
def forged_verifier(mlp: Compiled, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MLP bundle with a verifier rendered from its own vk.key and settings but another
    (development) SRS, every digest and the model id recorded consistently."""
    tmp = tmp_path_factory.mktemp("forged-verifier")
    other_srs = tmp / "other.srs"
    ezkl_backend.gen_srs(other_srs, mlp.bundle.manifest.srs.logrows)
    copy = _linked_copy(mlp.bundle.root, tmp / "bundle")
    (copy / b.SOLIDITY).unlink()
    ezkl_backend.render_evm_verifier(copy / b.VK, copy / b.SETTINGS, copy / b.SOLIDITY, other_srs)
    assert (copy / b.SOLIDITY).read_bytes() != mlp.bundle.path(b.SOLIDITY).read_bytes()
    manifest = _consistent(json.loads((copy / b.MANIFEST).read_text()), copy, (b.SOLIDITY,))
    _rewrite(copy, manifest)
    return copy


def test_a_verifier_made_with_another_srs_is_refused(mlp: Compiled, forged_verifier: Path) -> None:
    check_verifier_matches_keys(mlp.bundle)  # the genuine bundle passes, bytecode included
    forged = b.load_bundle(forged_verifier, check=b.VERIFY_FILES)  # consistent digests: loads
    with pytest.raises(ArtifactError, match="not the verifier of this bundle's keys"):
        check_verifier_matches_keys(forged)


@pytest.mark.anvil
def test_deploy_refuses_a_verifier_made_with_another_srs(
    anvil: Anvil, forged_verifier: Path, tmp_path: Path
) -> None:
    result = zkinfer(
        *("deploy", forged_verifier, "--rpc-url", anvil.url, "--json"),
        env={PRIVATE_KEY_ENV: KEYS[OWNER], "ZKINFER_HOME": str(own_home(tmp_path))},
    )
    assert result.code == 3, result.stdout + result.stderr
    assert "not the verifier of this bundle's keys" in result.json["error"]["message"]


def test_a_verifier_json_not_compiled_from_the_verifier_is_refused(
    mlp: Compiled, tmp_path: Path
) -> None:
    copy = _linked_copy(mlp.bundle.root, tmp_path / "bundle")
    contract = json.loads((copy / b.VERIFIER_JSON).read_text())
    contract["deployed_bytecode"] = contract["deployed_bytecode"][:-2] + "00"
    (copy / b.VERIFIER_JSON).unlink()
    (copy / b.VERIFIER_JSON).write_text(json.dumps(contract))
    manifest = _consistent(json.loads((copy / b.MANIFEST).read_text()), copy, (b.VERIFIER_JSON,))
    _rewrite(copy, manifest)
    with pytest.raises(ArtifactError, match="deployed_bytecode is not solc-js's compilation"):
        check_verifier_matches_keys(b.load_bundle(copy, check=(b.VERIFIER_JSON,)))


def test_recompiling_with_other_calibration_says_what_differs(
    mlp: Compiled, tmp_path: Path
) -> None:
    onnx, sample, _ = model_files("breast_cancer_mlp")
    copy = _linked_copy(mlp.bundle.root, tmp_path / "bundle")
    result = zkinfer("compile", onnx, "--sample", sample, "--out", copy, "--dev-srs", "--json")
    assert result.code == 2
    message = result.json["error"]["message"]
    assert "this model calibrated on other data" in message and "--force" in message
    other = zkinfer(
        "compile", onnx, "--sample", sample, "--out", copy, "--target", "accuracy", "--json"
    )
    assert (
        "compiled with other arguments: target 'resources' (asked now: 'accuracy')"
        in (other.json["error"]["message"])
    )
