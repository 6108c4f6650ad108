"""The on-chain commands as a user runs them: deploy, request, fulfill, worker, devnet, verify."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_typing import HexStr

from prover.chain.keys import PRIVATE_KEY_ENV
from prover.chain.market import Status, read_request
from tests.conftest import Compiled
from tests.helpers import own_home, resync_hex_proof, zkinfer
from tests.helpers.chain import KEYS, OWNER, PROVIDER, REQUESTER, Anvil, run_anvil

pytestmark = pytest.mark.anvil


def _env(role: int, home: Path | None = None) -> dict[str, str]:
    env = {PRIVATE_KEY_ENV: KEYS[role]}
    if home is not None:
        env["ZKINFER_HOME"] = str(home)
    return env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory of its own (deployments, worker cursor, devnet), sharing the SRS cache."""
    return own_home(tmp_path)


def _deploy(anvil: Anvil, bundle: Path, home: Path, *extra: str) -> dict[str, Any]:
    result = zkinfer(
        "deploy", bundle, "--rpc-url", anvil.url, "--json", *extra, env=_env(OWNER, home)
    )
    assert result.code == 0, result.stdout + result.stderr
    return result.json


def test_deploy_prints_the_addresses_and_reuses_them_the_second_time(
    anvil: Anvil, mlp: Compiled, home: Path
) -> None:
    first = _deploy(anvil, mlp.bundle.root, home)
    assert first["chain_id"] == 31337 and first["model_id"] == mlp.bundle.model_id
    assert {"deploy_market", "deploy_verifier", "register_model"} <= set(first["transactions"])
    again = _deploy(anvil, mlp.bundle.root, home)
    assert (again["verifier"], again["market"]) == (first["verifier"], first["market"])
    assert again["transactions"] == {} and all(again["reused"].values())
    saved = json.loads((home / "deployments" / "31337.json").read_text())
    assert saved["market"] == first["market"]


def test_request_then_fulfill_from_the_command_line(
    anvil: Anvil, mlp: Compiled, home: Path
) -> None:
    _deploy(anvil, mlp.bundle.root, home)
    req = zkinfer(
        "request", mlp.bundle.root, "--input", mlp.sample, "--reward", "0.02ether",
        "--rpc-url", anvil.url, "--json", env=_env(REQUESTER, home),
    )  # fmt: skip
    assert req.code == 0, req.stderr
    rid = req.json["request_id"]
    assert req.json["reward_wei"] == 2 * 10**16
    done = zkinfer(
        "fulfill", str(rid), "--bundle", mlp.bundle.root, "--rpc-url", anvil.url, "--json",
        env=_env(PROVIDER, home),
    )  # fmt: skip
    assert done.code == 0, done.stderr
    assert len(done.json["outputs"]) == 2 and done.json["output_scale"] == 13
    for proof in (["--proof", str(mlp.proof)], []):  # checked before proving, not by a revert
        again = zkinfer(
            "fulfill", str(rid), "--bundle", mlp.bundle.root, *proof,
            "--rpc-url", anvil.url, "--json", env=_env(PROVIDER, home),
        )  # fmt: skip
        assert again.code == 2 and "already fulfilled" in again.json["error"]["message"], proof
        assert "prove" not in again.stderr


def test_the_worker_serves_pending_requests_and_survives_kill_9(
    anvil: Anvil, mlp: Compiled, home: Path, tmp_path: Path
) -> None:
    """Invariant 9: a worker killed mid-proof loses nothing; the restarted one settles it once."""
    market = _deploy(anvil, mlp.bundle.root, home)["market"]
    rid = zkinfer(
        "request", mlp.bundle.root, "--input", mlp.sample, "--rpc-url", anvil.url, "--json",
        env=_env(REQUESTER, home),
    ).json["request_id"]  # fmt: skip
    # proofs of its own: a worker reuses a kept proof of the same input for the same chain id,
    # market address and request id, which another test's devnet may have left in the cache
    workdir = str(tmp_path / "proofs")
    args = [sys.executable, "-m", "prover", "worker", "--chain", "--bundle", str(mlp.bundle.root)]
    args += ["--rpc-url", anvil.url, "--lock", "--json", "--workdir", workdir]
    proc = subprocess.Popen(
        args,
        env={**os.environ, **_env(PROVIDER, home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    marker = f"request {rid}: proving"
    lines = _wait_for_line(proc, marker, timeout_s=180)
    proc.send_signal(signal.SIGKILL)  # in the middle of the proof
    proc.wait()
    assert lines and marker in lines[-1], "".join(lines)[-3000:]
    client = anvil.client(None)
    assert read_request(client, str(market), rid).status is Status.OPEN
    result = zkinfer(
        "worker", "--chain", "--once", "--lock", "--bundle", mlp.bundle.root,
        "--rpc-url", anvil.url, "--json", "--workdir", workdir, env=_env(PROVIDER, home),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["request_id"], o["status"]) for o in outcomes] == [(rid, "fulfilled")]
    assert "fulfill" in outcomes[0]["transactions"]  # and "lock", unless the first one got there
    assert read_request(client, str(market), rid).status is Status.FULFILLED
    rerun = zkinfer(
        "worker", "--chain", "--once", "--bundle", mlp.bundle.root, "--rpc-url", anvil.url,
        "--json", "--workdir", workdir, env=_env(PROVIDER, home),
    )  # fmt: skip
    assert rerun.code == 0 and rerun.stdout.strip() == ""  # nothing settled twice


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_line(proc: subprocess.Popen[str], marker: str, timeout_s: float) -> list[str]:
    """The stderr lines up to ``marker`` (or up to exit or ``timeout_s``); never hangs."""
    lines: list[str] = []
    stop = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if marker in line:
                break
        stop.set()  # the marker, or the process ended without it

    threading.Thread(target=read, daemon=True).start()
    stop.wait(timeout_s)
    return lines


def test_verify_on_chain_gives_the_local_verdicts_and_exit_codes(
    anvil: Anvil, mlp: Compiled, cnn: Compiled, home: Path, tmp_path: Path
) -> None:
    verifier = str(_deploy(anvil, mlp.bundle.root, home)["verifier"])
    on_chain: list[str | Path] = ["--bundle", mlp.bundle.root, "--rpc-url", anvil.url]
    on_chain += ["--verifier", verifier]
    ok = zkinfer("verify", mlp.proof, *on_chain, "--json")
    assert ok.code == 0 and ok.json["valid"] is True, ok.stdout + ok.stderr
    assert (
        ok.json["outputs"]
        == zkinfer("verify", mlp.proof, "--bundle", mlp.bundle.root, "--json").json["outputs"]
    )
    doc = json.loads(mlp.proof.read_text())
    doc["proof"][200] ^= 1
    resync_hex_proof(doc)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    bad = zkinfer("verify", tampered, *on_chain, "--json")
    assert bad.code == 1 and bad.json["valid"] is False
    assert "on-chain verifier" in bad.json["reason"]
    folder = tmp_path / "proofs"
    folder.mkdir()
    shutil.copy(mlp.proof, folder / "good.json")
    shutil.copy(tampered, folder / "tampered.json")
    many = zkinfer("verify", folder, *on_chain, "--json")
    lines = [json.loads(line) for line in many.stdout.splitlines()]
    assert many.code == 1
    assert [(d["proof"].rsplit("/", 1)[-1], d["valid"]) for d in lines[:-1]] == [
        ("good.json", True),
        ("tampered.json", False),
    ]
    assert all(d["checked_by"].startswith(f"verifier {verifier}") for d in lines[:-1])
    assert lines[-1]["summary"]["valid"] == 1 and lines[-1]["summary"]["invalid"] == 1
    cnn_verifier = str(_deploy(anvil, cnn.bundle.root, home)["verifier"])
    wrong = zkinfer("verify", mlp.proof, "--bundle", mlp.bundle.root, "--rpc-url", anvil.url,
                    "--verifier", cnn_verifier, "--json")  # fmt: skip
    assert wrong.code == 3 and "not this bundle's verifier" in wrong.json["error"]["message"]
    empty = zkinfer("verify", mlp.proof, "--bundle", mlp.bundle.root, "--rpc-url", anvil.url,
                    "--verifier", "0x" + "11" * 20, "--json")  # fmt: skip
    assert empty.code == 3 and "no contract there" in empty.json["error"]["message"]


def test_an_unreachable_rpc_and_a_wrong_chain_id_are_exit_3(mlp: Compiled, home: Path) -> None:
    down = zkinfer("deploy", mlp.bundle.root, "--rpc-url", "http://127.0.0.1:9", "--json",
                   env=_env(OWNER, home))  # fmt: skip
    assert down.code == 3 and "unreachable" in down.json["error"]["message"]
    with run_anvil() as node:
        wrong = zkinfer("deploy", mlp.bundle.root, "--rpc-url", node.url, "--chain-id", "1",
                        "--json", env=_env(OWNER, home))  # fmt: skip
    assert wrong.code == 3
    assert "serves chain id 31337, not the expected 1" in wrong.json["error"]["message"]


def test_a_dev_srs_bundle_is_refused_on_a_non_devnet_chain_unless_allowed(
    mlp: Compiled, home: Path
) -> None:
    """Invariant 5."""
    with run_anvil(chain_id=11155111) as node:
        refused = zkinfer("deploy", mlp.bundle.root, "--rpc-url", node.url, "--json",
                          env=_env(OWNER, home))  # fmt: skip
        assert refused.code == 2 and "dev-unsafe" in refused.json["error"]["message"]
        allowed = zkinfer("deploy", mlp.bundle.root, "--rpc-url", node.url,
                          "--allow-unsafe-srs", "--json", env=_env(OWNER, home))  # fmt: skip
        assert allowed.code == 0 and allowed.json["chain_id"] == 11155111
        assert any("dev-unsafe" in w for w in allowed.json["warnings"])


def test_deploy_refuses_lock_terms_the_market_would_refuse(mlp: Compiled, home: Path) -> None:
    for option in (["--lock-stake", "0"], ["--lock-duration", "0"], ["--lock-duration", "90000"]):
        result = zkinfer("deploy", mlp.bundle.root, *option, "--json", env=_env(OWNER, home))
        assert result.code == 2 and "--lock-" in result.json["error"]["message"], option


def test_keys_come_from_the_environment_or_a_keystore_and_are_never_printed(
    anvil: Anvil, mlp: Compiled, home: Path, tmp_path: Path
) -> None:
    bad = zkinfer("deploy", mlp.bundle.root, "--rpc-url", anvil.url, "--json",
                  env={**_env(OWNER, home), PRIVATE_KEY_ENV: "0xdeadbeef-secret"})  # fmt: skip
    assert bad.code == 3 and "not a 32-byte hex private key" in bad.json["error"]["message"]
    assert "deadbeef" not in bad.stdout + bad.stderr
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(HexStr(KEYS[OWNER]), "pw", iterations=2)))
    env = {"ZKINFER_HOME": str(home), PRIVATE_KEY_ENV: "", "ZKINFER_KEYSTORE_PASSWORD": "pw"}
    ok = zkinfer("deploy", mlp.bundle.root, "--rpc-url", anvil.url, "--keystore", keystore,
                 "--json", env=env)  # fmt: skip
    assert ok.code == 0, ok.stderr
    assert KEYS[OWNER][2:] not in ok.stdout + ok.stderr
    env["ZKINFER_KEYSTORE_PASSWORD"] = "wrong"
    wrong = zkinfer("deploy", mlp.bundle.root, "--rpc-url", anvil.url, "--keystore", keystore,
                    "--json", env=env)  # fmt: skip
    assert wrong.code == 3 and "cannot decrypt" in wrong.json["error"]["message"]
    # one key rule for the default devnet and --rpc-url: without a key, a local devnet chain
    # signs with anvil's public account 0 and says so; any other chain refuses
    nokey = zkinfer("request", mlp.bundle.root, "--input", mlp.sample, "--rpc-url", anvil.url,
                    "--json", env={"ZKINFER_HOME": str(home), PRIVATE_KEY_ENV: ""})  # fmt: skip
    assert nokey.code == 0, nokey.stderr
    assert "signing as devnet test account 0 (0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266)" in (
        nokey.stderr.replace("\n", " ")
    )
    no_key = {"ZKINFER_HOME": str(home), PRIVATE_KEY_ENV: ""}
    with run_anvil(chain_id=11155111) as node:
        refused = zkinfer("deploy", mlp.bundle.root, "--rpc-url", node.url, "--allow-unsafe-srs",
                          "--json", env=no_key)  # fmt: skip
    assert refused.code == 3 and "ZKINFER_PRIVATE_KEY" in refused.json["error"]["message"]


def test_the_devnet_keeps_its_deployments_across_a_restart(mlp: Compiled, home: Path) -> None:
    env = {"ZKINFER_HOME": str(home), PRIVATE_KEY_ENV: ""}
    try:
        port = str(_free_port())
        started = zkinfer("devnet", "start", "--port", port, "--json", env=env)
        assert started.code == 0 and started.json["running"] and started.json["chain_id"] == 31337
        assert started.json["rpc_url"].endswith(f":{port}")
        accounts = zkinfer("devnet", "status", "--json", env=env).json["accounts"]
        assert accounts[1]["address"] == Account.from_key(KEYS[PROVIDER]).address
        assert accounts[1]["private_key"] == KEYS[PROVIDER]
        deployed = zkinfer("deploy", mlp.bundle.root, "--json", env=env)  # no --rpc-url: devnet
        assert deployed.code == 0, deployed.stderr
        assert "started the local devnet" not in deployed.stderr  # it was running
        assert zkinfer("devnet", "stop", "--json", env=env).json["stopped"] is True
        assert zkinfer("devnet", "status", "--json", env=env).json["running"] is False
        again = zkinfer("deploy", mlp.bundle.root, "--json", env=env)  # restarts the devnet
        assert again.code == 0, again.stderr
        assert f"started the local devnet at http://127.0.0.1:{port}" in again.stderr
        assert again.json["transactions"] == {}
        assert again.json["market"] == deployed.json["market"]
    finally:
        zkinfer("devnet", "stop", env=env)
    assert (home / "devnet" / "state.json").is_file()


def test_the_worker_reports_a_skipped_request_once_in_json_and_in_words(
    anvil: Anvil, mlp: Compiled, home: Path
) -> None:
    market = _deploy(anvil, mlp.bundle.root, home)["market"]
    rid = zkinfer(
        "request", mlp.bundle.root, "--input", mlp.sample, "--reward", "1wei",
        "--rpc-url", anvil.url, "--json", env=_env(REQUESTER, home),
    ).json["request_id"]  # fmt: skip
    worker: list[str | Path] = ["worker", "--chain", "--once", "--bundle", mlp.bundle.root]
    worker += ["--rpc-url", anvil.url]
    as_json = zkinfer(*worker, "--lock", "--json", env=_env(PROVIDER, home))
    assert as_json.code == 0, as_json.stderr
    assert as_json.json["request_id"] == rid and as_json.json["status"] == "skipped"
    assert as_json.json["detail"] == "reward 1 wei is below the minimum of 1000000000000000 wei"
    assert as_json.json["transactions"] == {}
    assert zkinfer(*worker, env=_env(PROVIDER, home)).stderr.count(f"request {rid}:") == 0
    words = zkinfer(*worker, "--from-block", "0", "--min-reward", "2wei", env=_env(PROVIDER, home))
    assert words.code == 0 and words.stdout == ""
    assert f"request {rid}: skipped reward 1 wei is below the minimum of 2 wei" in words.stderr
    bad = zkinfer(*worker, "--cost-margin=-1", "--json", env=_env(PROVIDER, home))
    assert bad.code == 2 and "--cost-margin" in bad.json["error"]["message"]
    assert read_request(anvil.client(None), str(market), rid).status is Status.OPEN
