"""The market on a real anvil node with real ezkl proofs: settlement, and attacks that must fail.

Every proof here comes from ezkl on a reference model, every verifier is the one compile generated
and solc-js compiled; nothing about the chain is faked.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from web3.contract.contract import Contract

from prover.chain.abi_types import MarketContract
from prover.chain.client import ZERO_ADDRESS, ChainClient, events_of
from prover.chain.contracts import load_artifact, verifier_artifact
from prover.chain.deploy import (
    DeployOptions,
    DeployResult,
    deploy_bundle,
    model_config,
    registration_id,
)
from prover.chain.market import (
    Status,
    encode_request_input,
    fulfill_request,
    input_commitment,
    prove_request,
    read_request,
    request_inference,
)
from prover.chain.worker import WorkerLimits, WorkerOutcome, serve_requests
from prover.chain.worker_policy import WorkerPolicy
from prover.core import bundle as b
from prover.core.expected import load_bundle_inputs
from prover.core.fields import felt_from_hex, signed_to_float
from prover.core.verify import verify
from prover.errors import ArtifactError, RpcUnavailable, TransactionReverted, UsageError
from tests.conftest import Compiled
from tests.helpers import MODELS, write_json
from tests.helpers.chain import OTHER, PROVIDER, REQUESTER, Anvil, attacker

pytestmark = pytest.mark.anvil

REWARD = 10**16


@dataclass(frozen=True)
class Market:
    """A fresh market with the MLP registered, and clients for each role."""

    address: str
    deployed: DeployResult
    owner: ChainClient
    provider: ChainClient
    requester: ChainClient
    other: ChainClient

    def contract(self, client: ChainClient) -> Contract:
        return client.contract(load_artifact("InferenceMarket"), self.address)


@pytest.fixture
def market(anvil: Anvil, mlp: Compiled) -> Market:
    owner = anvil.client()
    fresh = owner.deploy(load_artifact("InferenceMarket"), "deploy market")
    address = str(fresh.contract_address)
    deployed = deploy_bundle(owner, mlp.bundle.root, DeployOptions(market=address))
    return Market(
        address,
        deployed,
        owner,
        anvil.client(PROVIDER),
        anvil.client(REQUESTER),
        anvil.client(OTHER),
    )


def _proof_args(proof: Path) -> tuple[bytes, list[int]]:
    doc = json.loads(proof.read_text())
    return bytes(doc["proof"]), [felt_from_hex(h) for h in doc["instances"][0]]


def _request(
    m: Market,
    mlp: Compiled,
    sample: Path | None = None,
    deadline_s: int = 3600,
    consumer: str | None = None,
) -> int:
    """A request through the client, as a requester makes it."""
    result = request_inference(
        m.requester,
        m.address,
        mlp.bundle.root,
        sample or mlp.sample,
        reward_wei=REWARD,
        deadline_s=deadline_s,
        consumer=consumer,
    )
    return result.request_id


def _other_input(tmp_path: Path) -> Path:
    doc = json.loads((MODELS / "breast_cancer_mlp" / "input.json").read_text())
    doc["input_data"][0][0] += 0.5
    return write_json(tmp_path / "other-input.json", doc)


def _raw_fulfill(m: Market, client: ChainClient, rid: int, proof: bytes, inst: list[int]) -> None:
    client.transact(m.contract(client).functions.fulfill(rid, proof, inst), "fulfill")


def _revert_name(exc: pytest.ExceptionInfo[TransactionReverted]) -> str | None:
    return exc.value.error_name


def test_request_and_fulfill_settle_once_with_the_locally_verified_outputs(
    market: Market, mlp: Compiled
) -> None:
    rid = _request(market, mlp)
    assert read_request(market.owner, market.address, rid).status is Status.OPEN
    done = fulfill_request(market.provider, market.address, mlp.bundle.root, rid, mlp.proof)
    local = verify(mlp.proof, mlp.bundle.root)
    assert local.valid and local.outputs is not None
    assert done.outputs == pytest.approx(local.outputs[0], abs=2**-12)
    assert read_request(market.owner, market.address, rid).status is Status.FULFILLED
    c = market.contract(market.owner)
    assert market.owner.call(c.functions.owed(market.provider.address), "owed") == REWARD
    stored = market.owner.call(c.functions.outputsOf(rid), "outputs")
    assert [signed_to_float(v, 13) for v in stored] == done.outputs
    assert done.tx.gas_used < 16_777_216 // 10  # invariant 8: far below the per-tx cap


def test_the_registration_and_the_request_read_back_by_name_as_they_were_written(
    market: Market, mlp: Compiled
) -> None:
    """The typed accessors decode the market's structs field by field: the registration is the
    config deploy wrote, the request carries what the requester sent."""
    reader = MarketContract(market.other, market.address)
    registration = reader.get_model(bytes.fromhex(market.deployed.registration_id[2:]))
    written = model_config(mlp.bundle, market.deployed.verifier, DeployOptions())
    assert registration.config == written
    assert registration.model_id.hex() == mlp.bundle.model_id and not registration.paused
    assert registration.owner == registration.registrant == market.owner.address
    verifier = verifier_artifact(mlp.bundle.path(b.VERIFIER_JSON))
    assert registration.verifier_code_hash == verifier.runtime_code_hash
    commitment, _ = encode_request_input(mlp.bundle, load_bundle_inputs(mlp.bundle, mlp.sample))
    sent = request_inference(
        market.requester, market.address, mlp.bundle.root, mlp.sample, reward_wei=REWARD + 1
    )
    stored = reader.get_request(sent.request_id)
    assert (stored.requester, stored.consumer, stored.status) == (
        market.requester.address,
        ZERO_ADDRESS,
        Status.OPEN,
    )
    assert (stored.reward_wei, stored.input_commitment) == (REWARD + 1, commitment)
    assert stored.registration_id == registration_id(market.owner.address, mlp.bundle.model_id)
    assert stored.deadline == sent.deadline
    assert (stored.locked_by, stored.lock_deadline, stored.lock_stake) == (ZERO_ADDRESS, 0, 0)


def test_a_proof_replayed_for_the_same_request_settles_nothing_twice(
    market: Market, mlp: Compiled
) -> None:
    rid = _request(market, mlp)
    fulfill_request(market.provider, market.address, mlp.bundle.root, rid, mlp.proof)
    with pytest.raises(TransactionReverted) as exc:
        _raw_fulfill(market, market.other, rid, *_proof_args(mlp.proof))
    assert _revert_name(exc) == "InferenceMarketRequestNotOpen"


def test_a_proof_replayed_for_a_second_request_with_another_input_is_refused(
    market: Market, mlp: Compiled, tmp_path: Path
) -> None:
    first = _request(market, mlp)
    second = _request(market, mlp, _other_input(tmp_path))
    fulfill_request(market.provider, market.address, mlp.bundle.root, first, mlp.proof)
    with pytest.raises(TransactionReverted) as exc:
        _raw_fulfill(market, market.other, second, *_proof_args(mlp.proof))
    assert _revert_name(exc) == "InferenceMarketInputMismatch"
    with pytest.raises(UsageError, match="another input"):  # the client refuses before sending
        fulfill_request(market.provider, market.address, mlp.bundle.root, second, mlp.proof)


def test_a_valid_proof_of_another_model_is_refused_by_its_instance_count(
    market: Market, mlp: Compiled, cnn: Compiled
) -> None:
    rid = _request(market, mlp)
    with pytest.raises(TransactionReverted) as exc:
        _raw_fulfill(market, market.provider, rid, *_proof_args(cnn.proof))
    assert _revert_name(exc) == "InferenceMarketInstanceCount"


def test_the_market_only_uses_the_verifier_pinned_for_the_model(
    anvil: Anvil, mlp: Compiled, cnn: Compiled
) -> None:
    """Invariant 1: the MLP registered with the CNN's verifier accepts no MLP proof."""
    owner = anvil.client()
    cnn_deployed = deploy_bundle(owner, cnn.bundle.root)
    fresh = owner.deploy(load_artifact("InferenceMarket"), "deploy market")
    contract = owner.contract(load_artifact("InferenceMarket"), str(fresh.contract_address))
    config = model_config(mlp.bundle, cnn_deployed.verifier, DeployOptions())
    model_id = bytes.fromhex(mlp.bundle.model_id)
    owner.transact(contract.functions.registerModel(model_id, config.as_abi()), "register")
    commitment, _ = encode_request_input(mlp.bundle, load_bundle_inputs(mlp.bundle, mlp.sample))
    registration = registration_id(owner.address, mlp.bundle.model_id)
    rid = _raw_request(owner, contract, registration, commitment)
    with pytest.raises(TransactionReverted) as exc:
        owner.transact(contract.functions.fulfill(rid, *_proof_args(mlp.proof)), "fulfill")
    assert _revert_name(exc) == "InferenceMarketProofRejected"


def test_a_squatted_model_id_neither_blocks_its_owner_nor_reaches_its_clients(
    anvil: Anvil, mlp: Compiled, cnn: Compiled, tmp_path: Path
) -> None:
    """Issue 8, registration squatting: a stranger registers the model's id first with the genuine
    verifier and layout but hostile terms (1-wei stake, one-day locks) and pauses it; another with
    the CNN's verifier. Registrations are keyed by registrant: the owner still registers, and
    clients that pin the owner (the recorded registrant) request, get served and settle."""
    squatter, forger = anvil.client(OTHER), anvil.client(PROVIDER)
    owner, requester = anvil.client(), anvil.client(REQUESTER)
    cnn_verifier = deploy_bundle(owner, cnn.bundle.root).verifier
    mlp_verifier = deploy_bundle(owner, mlp.bundle.root).verifier
    fresh = squatter.deploy(load_artifact("InferenceMarket"), "deploy market")
    market = str(fresh.contract_address)
    contract = squatter.contract(load_artifact("InferenceMarket"), market)
    model_id = bytes.fromhex(mlp.bundle.model_id)
    hostile = DeployOptions(min_lock_stake_wei=1, lock_duration_s=86_400)
    squatter.transact(
        contract.functions.registerModel(
            model_id, model_config(mlp.bundle, mlp_verifier, hostile).as_abi()
        ),
        "squat",
    )
    squatted = registration_id(squatter.address, mlp.bundle.model_id)
    squatter.transact(contract.functions.setModelPaused(squatted, True), "pause")
    forged = model_config(mlp.bundle, cnn_verifier, DeployOptions())
    forger.transact(contract.functions.registerModel(model_id, forged.as_abi()), "forge")

    deployed = deploy_bundle(owner, mlp.bundle.root, DeployOptions(market=market))
    assert deployed.registrant == owner.address and deployed.reused["registration"] is False
    assert deployed.registration_id == "0x" + registration_id(owner.address, model_id.hex()).hex()
    with pytest.raises(ArtifactError, match="verifier's code is not this bundle's verifier"):
        request_inference(requester, market, mlp.bundle.root, mlp.sample, reward_wei=REWARD,
                          registrant=forger.address)  # fmt: skip
    with pytest.raises(TransactionReverted, match="InferenceMarketModelPaused"):
        request_inference(requester, market, mlp.bundle.root, mlp.sample, reward_wei=REWARD,
                          registrant=squatter.address)  # fmt: skip
    commitment, _ = encode_request_input(mlp.bundle, load_bundle_inputs(mlp.bundle, mlp.sample))
    forged_id = registration_id(forger.address, mlp.bundle.model_id)
    _raw_request(requester, contract, forged_id, commitment)  # the worker must not serve it
    req = request_inference(requester, market, mlp.bundle.root, mlp.sample, reward_wei=REWARD)
    assert req.registration_id == deployed.registration_id
    outcomes = serve_requests(
        anvil.client(PROVIDER), market, [mlp.bundle.root], workdir=tmp_path, lock=True, once=True
    )
    assert [(o.request_id, o.status) for o in outcomes] == [(req.request_id, "fulfilled")]


def test_a_hashed_input_model_settles_against_its_poseidon_commitment(
    anvil: Anvil, mlp_hashed: Compiled
) -> None:
    owner, provider = anvil.client(), anvil.client(PROVIDER)
    fresh = owner.deploy(load_artifact("InferenceMarket"), "deploy market")
    market = str(fresh.contract_address)
    deploy_bundle(owner, mlp_hashed.bundle.root, DeployOptions(market=market))
    bundle = mlp_hashed.bundle
    req = request_inference(owner, market, bundle.root, mlp_hashed.sample, reward_wei=REWARD)
    _, instances = _proof_args(mlp_hashed.proof)
    assert bundle.manifest.instances.input.count == 1  # one Poseidon hash
    assert req.commitment == "0x" + input_commitment(instances[:1]).hex()
    done = fulfill_request(provider, market, bundle.root, req.request_id, mlp_hashed.proof)
    assert len(done.outputs) == 2
    assert read_request(owner, market, req.request_id).status is Status.FULFILLED


def _raw_request(
    client: ChainClient,
    contract: Contract,
    registration: bytes,
    commitment: bytes,
    data: bytes = b"",
) -> int:
    """A request placed straight through the ABI, for a commitment the client would not make."""
    deadline = client.now() + 3600
    fn = contract.functions.requestInference(registration, commitment, data, deadline, ZERO_ADDRESS)
    tx = client.transact(fn, "request", value=REWARD)
    return int(events_of(contract, "InferenceRequested", tx)[0]["args"]["requestId"])


@pytest.mark.parametrize("where", ["output", "input"])
def test_instances_changed_after_proving_are_rejected(
    market: Market, mlp: Compiled, where: str, tmp_path: Path
) -> None:
    proof, instances = _proof_args(mlp.proof)
    layout = mlp.bundle.manifest.instances
    if where == "output":
        rid = _request(market, mlp)
        instances[layout.output.offset] += 1
    else:  # a request committed to the changed input: the commitment matches, the proof does not
        instances[layout.input.offset] += 1
        start, count = layout.input.offset, layout.input.count
        commitment = input_commitment(instances[start : start + count])
        registration = bytes.fromhex(market.deployed.registration_id[2:])
        rid = _raw_request(
            market.requester, market.contract(market.requester), registration, commitment
        )
    with pytest.raises(TransactionReverted) as exc:
        _raw_fulfill(market, market.provider, rid, proof, instances)
    assert _revert_name(exc) == "InferenceMarketProofRejected"
    assert read_request(market.owner, market.address, rid).status is Status.OPEN


def test_a_proof_copied_by_another_account_while_a_lock_is_held_is_refused(
    market: Market, mlp: Compiled
) -> None:
    rid = _request(market, mlp)
    c = market.contract(market.provider)
    market.provider.transact(c.functions.lockRequest(rid), "lock", value=10**16)
    with pytest.raises(TransactionReverted) as exc:
        _raw_fulfill(market, market.other, rid, *_proof_args(mlp.proof))
    assert _revert_name(exc) == "InferenceMarketRequestLocked"
    done = fulfill_request(market.provider, market.address, mlp.bundle.root, rid, mlp.proof)
    assert done.outputs
    owed = market.owner.call(c.functions.owed(market.provider.address), "owed")
    assert owed == REWARD + 10**16  # the reward and the stake back


def test_fulfil_after_the_deadline_is_refused_and_the_requester_is_refunded(
    market: Market, mlp: Compiled, anvil: Anvil
) -> None:
    rid = _request(market, mlp, deadline_s=60)
    anvil.advance(120)
    with pytest.raises(TransactionReverted) as exc:
        _raw_fulfill(market, market.provider, rid, *_proof_args(mlp.proof))
    assert _revert_name(exc) == "InferenceMarketDeadlinePassed"
    c = market.contract(market.other)
    market.other.transact(c.functions.refund(rid), "refund")
    assert market.owner.call(c.functions.owed(market.requester.address), "owed") == REWARD
    assert read_request(market.owner, market.address, rid).status is Status.REFUNDED


@pytest.mark.parametrize("consumer", ["RevertingConsumer", "GasBurningConsumer"])
def test_a_consumer_callback_that_reverts_or_burns_gas_cannot_block_settlement(
    market: Market, mlp: Compiled, consumer: str
) -> None:
    bad = market.requester.deploy(attacker(consumer), f"deploy {consumer}")
    rid = _request(market, mlp, consumer=str(bad.contract_address))
    done = fulfill_request(market.provider, market.address, mlp.bundle.root, rid, mlp.proof)
    assert done.callback_failed
    assert read_request(market.owner, market.address, rid).status is Status.FULFILLED
    assert done.tx.gas_used < 16_777_216 // 10


def test_reentering_withdraw_pays_once_and_keeps_the_books_balanced(
    market: Market, mlp: Compiled, anvil: Anvil
) -> None:
    _request(market, mlp)  # other people's escrow that a re-entrancy bug would drain
    thief = market.other.deploy(attacker("ReentrantRequester"), "deploy", market.address)
    t = market.other.contract(attacker("ReentrantRequester"), str(thief.contract_address))
    deadline = market.owner.now() + 60
    registration = bytes.fromhex(market.deployed.registration_id[2:])
    market.other.transact(
        t.functions.request(registration, b"\x01" * 32, deadline), "r", value=REWARD
    )
    rid = market.owner.call(market.contract(market.owner).functions.nextRequestId(), "next") - 1
    anvil.advance(120)
    market.other.transact(t.functions.refundAndWithdraw(rid), "refund and withdraw")
    assert market.other.call(t.functions.received(), "received") == REWARD
    assert market.other.call(t.functions.reentered(), "reentered") == 1  # the re-entry failed
    c = market.contract(market.owner)
    balance = market.owner.w3.eth.get_balance(market.owner.w3.to_checksum_address(market.address))
    escrowed = market.owner.call(c.functions.totalEscrowed(), "escrowed")
    owed = market.owner.call(c.functions.totalOwed(), "owed")
    assert balance == escrowed + owed == REWARD


def test_the_provider_withdraws_exactly_what_it_earned(market: Market, mlp: Compiled) -> None:
    rid = _request(market, mlp)
    fulfill_request(market.provider, market.address, mlp.bundle.root, rid, mlp.proof)
    w3 = market.provider.w3
    before = w3.eth.get_balance(market.provider.address)
    tx = market.provider.transact(market.contract(market.provider).functions.withdraw(), "w")
    fee = tx.receipt["gasUsed"] * tx.receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(market.provider.address) == before + REWARD - fee
    with pytest.raises(TransactionReverted) as exc:
        market.provider.transact(market.contract(market.provider).functions.withdraw(), "w")
    assert _revert_name(exc) == "InferenceMarketNothingOwed"


def test_a_provider_proves_a_request_from_its_on_chain_input_data(
    market: Market, mlp: Compiled, tmp_path: Path
) -> None:
    rid = _request(market, mlp, _other_input(tmp_path))
    request = read_request(market.provider, market.address, rid)
    proof = prove_request(mlp.bundle.root, request, tmp_path / "p.json")
    done = fulfill_request(market.provider, market.address, mlp.bundle.root, rid, proof)
    assert verify(proof, mlp.bundle.root, input_path=_other_input(tmp_path)).valid
    assert len(done.outputs) == 2


def test_a_paused_model_takes_no_requests(market: Market, mlp: Compiled) -> None:
    c = market.contract(market.owner)
    model_id = bytes.fromhex(market.deployed.registration_id[2:])
    market.owner.transact(c.functions.setModelPaused(model_id, True), "pause")
    with pytest.raises(TransactionReverted) as exc:
        _request(market, mlp)
    assert _revert_name(exc) == "InferenceMarketModelPaused"
    with pytest.raises(TransactionReverted) as exc:
        market.other.transact(
            market.contract(market.other).functions.setModelPaused(model_id, False), "unpause"
        )
    assert _revert_name(exc) == "InferenceMarketNotModelOwner"


def test_the_worker_stakes_nothing_on_a_request_whose_data_does_not_match_its_commitment(
    market: Market, mlp: Compiled, tmp_path: Path
) -> None:
    bundle = mlp.bundle
    commitment, _ = encode_request_input(bundle, load_bundle_inputs(bundle, mlp.sample))
    _, other_data = encode_request_input(bundle, load_bundle_inputs(bundle, _other_input(tmp_path)))
    c = market.contract(market.requester)
    registration = bytes.fromhex(market.deployed.registration_id[2:])
    rid = _raw_request(market.requester, c, registration, commitment, other_data)
    outcomes = serve_requests(
        market.provider, market.address, [bundle.root], workdir=tmp_path / "w", lock=True, once=True
    )
    assert [(o.request_id, o.status) for o in outcomes] == [(rid, "failed")]
    assert "does not match its input commitment" in outcomes[0].detail
    assert outcomes[0].transactions == {}
    request = read_request(market.owner, market.address, rid)
    assert request.status is Status.OPEN and int(request.locked_by, 16) == 0


def test_rpc_errors_are_retried_then_reported_without_the_url(anvil: Anvil) -> None:
    client = anvil.client(None)
    client.retries = 2
    calls: list[int] = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise requests.ConnectionError("connection reset")
        return 42

    assert client.rpc("read something", flaky) == 42 and len(calls) == 3
    secret = ChainClient(client.w3, "https://rpc.example/v2/SECRET-KEY", client.chain_id)
    secret.retries = 1

    def dead() -> int:
        raise requests.ConnectionError("https://rpc.example/v2/SECRET-KEY refused")

    with pytest.raises(RpcUnavailable) as exc:
        secret.rpc("read something", dead)
    assert "SECRET" not in str(exc.value) and "https://rpc.example/…" in str(exc.value)


def test_the_worker_never_stakes_more_than_its_limit(
    market: Market, mlp: Compiled, tmp_path: Path
) -> None:
    rid = _request(market, mlp)
    outcomes = serve_requests(
        market.provider,
        market.address,
        [mlp.bundle.root],
        workdir=tmp_path / "w",
        lock=True,
        once=True,
        limits=WorkerLimits(max_stake_wei=10**16 - 1),  # the model asks 10**16
    )
    assert [(o.request_id, o.status) for o in outcomes] == [(rid, "skipped")]
    assert "above the worker's limit" in outcomes[0].detail and outcomes[0].transactions == {}
    assert int(read_request(market.owner, market.address, rid).locked_by, 16) == 0


def test_the_worker_proves_again_when_a_kept_proof_is_for_another_input(
    market: Market, mlp: Compiled, tmp_path: Path
) -> None:
    """A kept proof is reused on retry only while it proves the request's committed input (a
    devnet started afresh reuses request ids)."""
    rid = _request(market, mlp, _other_input(tmp_path))
    workdir = tmp_path / "w"
    workdir.mkdir()
    kept = workdir / f"{market.provider.chain_id}-{market.address.lower()}-request-{rid}.json"
    shutil.copy(mlp.proof, kept)  # a proof of the sample, not of this request's input
    outcomes = serve_requests(
        market.provider, market.address, [mlp.bundle.root], workdir=workdir, once=True
    )
    assert [(o.request_id, o.status) for o in outcomes] == [(rid, "fulfilled")]
    assert read_request(market.owner, market.address, rid).status is Status.FULFILLED


def _paid_request(
    m: Market, mlp: Compiled, reward_wei: int, consumer: str = ZERO_ADDRESS, data: bytes = b""
) -> int:
    """A request with any reward, consumer and inputData, straight through the ABI."""
    bundle = mlp.bundle
    commitment, sample_data = encode_request_input(bundle, load_bundle_inputs(bundle, mlp.sample))
    c = m.contract(m.requester)
    fn = c.functions.requestInference(
        bytes.fromhex(m.deployed.registration_id[2:]),
        commitment,
        data or sample_data,
        m.requester.now() + 3600,
        consumer,
    )
    tx = m.requester.transact(fn, "request", value=reward_wei)
    return int(events_of(c, "InferenceRequested", tx)[0]["args"]["requestId"])


def _balance(client: ChainClient) -> int:
    return int(client.w3.eth.get_balance(client.address))


def test_the_worker_does_not_serve_a_one_wei_request_whose_consumer_burns_gas(
    market: Market, mlp: Compiled, tmp_path: Path
) -> None:
    """Issue 8: the worker proved, staked and fulfilled it, paying about five times what the
    requester spent."""
    burner = market.requester.deploy(attacker("GasBurningConsumer"), "deploy GasBurningConsumer")
    rid = _paid_request(market, mlp, 1, str(burner.contract_address))
    before = _balance(market.provider)
    outcomes = serve_requests(
        market.provider, market.address, [mlp.bundle.root], workdir=tmp_path, lock=True, once=True
    )
    assert [(o.request_id, o.status) for o in outcomes] == [(rid, "skipped")]
    assert "reward 1 wei is below the minimum" in outcomes[0].detail
    assert outcomes[0].transactions == {} and _balance(market.provider) == before
    assert list(tmp_path.iterdir()) == []  # not even proven
    request = read_request(market.owner, market.address, rid)
    assert request.status is Status.OPEN and int(request.locked_by, 16) == 0


def test_a_provider_can_refuse_every_request_that_names_a_consumer(
    market: Market, mlp: Compiled, tmp_path: Path
) -> None:
    consumer = market.requester.deploy(attacker("RevertingConsumer"), "deploy RevertingConsumer")
    rid = _paid_request(market, mlp, REWARD, str(consumer.contract_address))
    policy = WorkerPolicy(refuse_consumers=True)
    outcomes = serve_requests(
        market.provider, market.address, [mlp.bundle.root], workdir=tmp_path, once=True,
        limits=WorkerLimits(policy=policy),
    )  # fmt: skip
    assert [(o.request_id, o.status) for o in outcomes] == [(rid, "skipped")]
    assert f"names consumer contract {consumer.contract_address}" in outcomes[0].detail


def test_the_worker_waits_while_the_reward_does_not_cover_the_gas_and_reports_it_once(
    market: Market, mlp: Compiled, tmp_path: Path
) -> None:
    rid = _paid_request(market, mlp, REWARD)
    stingy = WorkerLimits(policy=WorkerPolicy(cost_margin=10**6))  # gas x 10^6 > the reward
    seen: list[WorkerOutcome] = []
    stop = threading.Event()

    def report(outcome: WorkerOutcome) -> None:
        seen.append(outcome)
        threading.Timer(1.5, stop.set).start()  # polls every 0.1 s meanwhile

    serve_requests(
        market.provider, market.address, [mlp.bundle.root], workdir=tmp_path, poll_s=0.1,
        report=report, stop=stop, limits=stingy,
    )  # fmt: skip
    assert [(o.request_id, o.status) for o in seen] == [(rid, "waiting")]
    assert "less than 1e+06 times the estimated cost" in seen[0].detail
    # the request was not given up on: once gas is cheap enough for the provider, it is served
    outcomes = serve_requests(
        market.provider, market.address, [mlp.bundle.root], workdir=tmp_path, once=True
    )
    assert [(o.request_id, o.status) for o in outcomes] == [(rid, "fulfilled")]


def test_the_worker_gives_up_an_input_bomb_once_without_decoding_it(
    market: Market, mlp: Compiled, tmp_path: Path, anvil: Anvil
) -> None:
    """Issue 8: aliased ABI offsets in inputData (64 KiB here) decoded into a million values."""
    from tests.test_input_data import aliased_bomb

    rid = _paid_request(market, mlp, REWARD, data=aliased_bomb(1000, 1000))
    outcomes = serve_requests(
        market.provider, market.address, [mlp.bundle.root], workdir=tmp_path, lock=True, once=True
    )
    assert [(o.request_id, o.status) for o in outcomes] == [(rid, "failed")]
    assert "inputData is 64096 bytes, not the" in outcomes[0].detail
    assert len(outcomes[0].detail) < 200 and outcomes[0].transactions == {}
    anvil.advance(1)  # a new block for the restarted worker to scan up to
    restarted = serve_requests(
        market.provider, market.address, [mlp.bundle.root], workdir=tmp_path, once=True
    )
    assert restarted == []  # given up for good: a restarted worker does not read it again
