"""The dApp and provider journey with zkinfer commands only, on a real anvil node: a worker that
stays quiet while idle, `request --wait` with the proven class, `result`, `withdraw`, and a
consumer contract built from `encode-request`'s output and called back through
`request --consumer`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.chain.contracts import load_artifact
from prover.chain.keys import PRIVATE_KEY_ENV
from tests.conftest import Compiled
from tests.helpers import MODELS, own_home, zkinfer
from tests.helpers.chain import KEYS, OWNER, PROVIDER, REQUESTER, Anvil

pytestmark = pytest.mark.anvil

LABELS = MODELS / "breast_cancer_mlp" / "labels.json"


def _env(role: int, home: Path) -> dict[str, str]:
    return {PRIVATE_KEY_ENV: KEYS[role], "ZKINFER_HOME": str(home)}


def _wait_for(path: Path, text: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} not in {path.read_text()[-2000:]}"
        time.sleep(0.2)


def test_request_wait_result_withdraw_and_a_consumer_from_encode_request(
    anvil: Anvil, mlp: Compiled, tmp_path: Path
) -> None:
    home = own_home(tmp_path)
    deployed = zkinfer("deploy", mlp.bundle.root, "--rpc-url", anvil.url, "--json",
                       env=_env(OWNER, home))  # fmt: skip
    assert deployed.code == 0, deployed.stderr
    market = deployed.json["market"]

    # a provider's worker, started before any request: idle is said once, never as an error
    err, out = tmp_path / "worker.err", tmp_path / "worker.out"
    args = [sys.executable, "-m", "prover", "worker", "--chain", "--bundle", str(mlp.bundle.root)]
    args += ["--rpc-url", anvil.url, "--poll", "0.3", "--json"]
    with err.open("w") as e, out.open("w") as o:
        worker = subprocess.Popen(args, env={**os.environ, **_env(PROVIDER, home)}, stdout=o,
                                  stderr=e, text=True)  # fmt: skip
    try:
        _wait_for(err, "idle: waiting for new requests")
        time.sleep(3)  # about ten polls with no new block
        idle = err.read_text()
        assert idle.count("idle: waiting") == 1, idle
        assert "BlockOutOfRange" not in idle and "retrying" not in idle

        # the dApp developer: request and wait for the proven result, with the class name
        req = zkinfer(
            "request", mlp.bundle.root, "--input", mlp.sample, "--rpc-url", anvil.url,
            "--wait", "300", "--labels", LABELS, "--json", env=_env(REQUESTER, home),
        )  # fmt: skip
        assert req.code == 0, req.stderr
        result = req.json["result"]
        assert result["status"] == "fulfilled" and result["label"] == "benign"
        assert result["registration_id"] == deployed.json["registration_id"]
        local = zkinfer("verify", mlp.proof, "--bundle", mlp.bundle.root, "--json").json
        assert result["outputs"] == pytest.approx(local["outputs"][0], abs=2**-12)
        rid = req.json["request_id"]
        shown = zkinfer("result", str(rid), "--rpc-url", anvil.url, "--labels", LABELS, "--json",
                        env=_env(REQUESTER, home))  # fmt: skip
        assert shown.code == 0 and shown.json["outputs"] == result["outputs"]
        assert shown.json["label"] == "benign"
        human = zkinfer("result", str(rid), "--rpc-url", anvil.url, env=_env(REQUESTER, home))
        assert f"request {rid}: fulfilled" in human.stderr and "proven outputs" in human.stderr

        # a consumer contract pinned with encode-request's values, called back for its owner
        enc = zkinfer(
            "encode-request",
            mlp.bundle.root,
            "--input",
            mlp.sample,
            "--registrant",
            deployed.json["registrant"],
            "--json",
        )  # offline
        assert enc.code == 0, enc.stderr
        assert enc.json["registration_id"] == deployed.json["registration_id"]
        assert enc.json["input_commitment"] == req.json["input_commitment"]
        online = zkinfer(
            "encode-request",
            mlp.bundle.root,
            "--input",
            mlp.sample,
            "--rpc-url",
            anvil.url,
            "--json",
            env=_env(REQUESTER, home),
        )  # recorded, checked
        assert online.code == 0 and online.json == {**enc.json, "market": market}, online.stderr
        dapp = anvil.client(REQUESTER)
        minimal = load_artifact("MinimalConsumer")
        address = dapp.deploy(
            minimal, "deploy MinimalConsumer", market,
            bytes.fromhex(enc.json["registration_id"][2:]),
            bytes.fromhex(enc.json["verifier_code_hash"][2:]),
            bytes.fromhex(enc.json["layout_hash"][2:]),
        ).contract_address  # fmt: skip
        called = zkinfer(
            "request", mlp.bundle.root, "--input", mlp.sample, "--consumer", str(address),
            "--rpc-url", anvil.url, "--wait", "300", "--json", env=_env(REQUESTER, home),
        )  # fmt: skip
        assert called.code == 0, called.stderr
        consumer = dapp.contract(minimal, str(address))
        class_plus_one = dapp.call(consumer.functions.classPlusOne(called.json["request_id"]), "c")
        assert class_plus_one == 2  # "benign", as the proven outputs say
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["status"] for d in lines] == ["fulfilled", "fulfilled"]
    assert lines[-1]["owed_wei"] >= 2 * req.json["reward_wei"]  # the balance owed, as it grows

    # the provider gets paid, with zkinfer only
    paid = zkinfer("withdraw", "--rpc-url", anvil.url, "--json", env=_env(PROVIDER, home))
    assert paid.code == 0 and paid.json["withdrawn_wei"] == lines[-1]["owed_wei"], paid.stderr
    nothing = zkinfer("withdraw", "--rpc-url", anvil.url, "--json", env=_env(PROVIDER, home))
    assert nothing.code == 0 and nothing.json["withdrawn_wei"] == 0
    assert nothing.json["transaction"] is None


def test_the_consumer_option_refuses_an_address_without_code_and_wait_times_out(
    anvil: Anvil, mlp: Compiled, tmp_path: Path
) -> None:
    home = own_home(tmp_path)
    zkinfer("deploy", mlp.bundle.root, "--rpc-url", anvil.url, env=_env(OWNER, home))
    eoa = zkinfer(
        "request", mlp.bundle.root, "--input", mlp.sample, "--consumer", "0x" + "12" * 20,
        "--rpc-url", anvil.url, "--json", env=_env(REQUESTER, home),
    )  # fmt: skip
    assert eoa.code == 2 and "no contract there" in eoa.json["error"]["message"]
    waited = zkinfer(
        "request", mlp.bundle.root, "--input", mlp.sample, "--wait", "1", "--rpc-url", anvil.url,
        "--json", env=_env(REQUESTER, home),
    )  # fmt: skip
    assert waited.code == 3 and "still open after 1 s" in waited.json["error"]["message"]
    missing = zkinfer("result", "999999", "--rpc-url", anvil.url, "--json", env=_env(OWNER, home))
    assert missing.code == 2 and "does not exist" in missing.json["error"]["message"]


def test_worker_help_names_what_is_required() -> None:
    shown = zkinfer("worker", "--help")
    assert shown.code == 0
    text = " ".join(shown.stdout.split())
    assert "Required: exactly one of --api URL" in text
    assert "--chain and at least one --bundle DIR" in text and "zkinfer withdraw" in text
