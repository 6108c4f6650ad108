"""Batches on a real anvil node with real ezkl proofs of the tiny batch model (4 slots):
registration by slots, one-slot requests, ``fulfillBatch`` and the chain worker's batching."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from prover.chain.abi_types import MarketContract
from prover.chain.client import ChainClient, events_of
from prover.chain.contracts import load_artifact
from prover.chain.deploy import DeployOptions, deploy_bundle, model_config
from prover.chain.market import (
    Status,
    encode_request_input,
    fulfill_request,
    input_commitment,
    prove_request,
    read_request,
    request_inference,
)
from prover.chain.market_batch import fulfill_batch
from prover.chain.results import encode_request
from prover.chain.slots import load_request_input, market_slots, prove_slots
from prover.chain.worker import serve_requests
from prover.core import bundle as b
from prover.core.batch import prove_batch
from prover.core.compile import CompileOptions, compile_model
from prover.core.fields import felt_from_hex
from prover.core.solidity import EIP170_LIMIT
from prover.errors import InputError, UsageError
from tests.conftest import Compiled
from tests.helpers import write_json
from tests.helpers.chain import OTHER, PROVIDER, REQUESTER, Anvil
from tests.helpers.tiny import (
    TINY_HASHED_VERIFIER_LIMIT,
    TINY_MAX_LOGROWS,
    tiny_input,
    write_tiny_model,
)

pytestmark = pytest.mark.anvil

REWARD = 10**16


@dataclass(frozen=True)
class BatchMarket:
    """A fresh market with the tiny batch model registered by slots."""

    address: str
    registration: bytes
    requester: ChainClient
    provider: ChainClient
    other: ChainClient


@pytest.fixture
def batch_market(anvil: Anvil, tiny_batch: Compiled) -> BatchMarket:
    """A fresh market on the session's anvil, which keeps EIP-170's limit on deployed code: the
    batch bundle's verifier deploys as it would on Ethereum mainnet."""
    assert tiny_batch.bundle.manifest.verifier.runtime_size <= EIP170_LIMIT
    owner = anvil.client()
    fresh = owner.deploy(load_artifact("InferenceMarket"), "deploy market")
    address = str(fresh.contract_address)
    deployed = deploy_bundle(owner, tiny_batch.bundle.root, DeployOptions(market=address))
    return BatchMarket(
        address,
        bytes.fromhex(deployed.registration_id.removeprefix("0x")),
        anvil.client(REQUESTER),
        anvil.client(PROVIDER),
        anvil.client(OTHER),
    )


def _request(m: BatchMarket, bundle: Path, tmp_path: Path, i: int) -> int:
    """A request for tiny input ``i``: one slot's input."""
    sample = write_json(tmp_path / f"input-{i}.json", tiny_input(i))
    return request_inference(m.requester, m.address, bundle, sample, reward_wei=REWARD).request_id


def _single_proof_outputs(tiny_batch: Compiled, i: int) -> list[float]:
    """Input ``i``'s outputs as a proof of it alone (slot 0, the rest padding) decodes them."""
    (outputs,) = prove_batch(tiny_batch.bundle, [tiny_input(i)]).slot_outputs[0] or []
    return outputs


def test_a_batch_bundle_registers_one_slot_per_row(
    batch_market: BatchMarket, tiny_batch: Compiled
) -> None:
    config = (
        MarketContract(batch_market.requester, batch_market.address)
        .get_model(batch_market.registration)
        .config
    )
    assert (config.batch_size, config.instance_count) == (4, 20)
    assert (config.input_offset, config.input_count) == (0, 3)
    assert (config.output_offset, config.output_count) == (12, 2)


def test_a_batch_with_hashed_inputs_registers_one_hash_per_slot(tmp_path: Path) -> None:
    """Hashed inputs in a batch are hashed slot by slot (the slotted graph): the market settles
    each slot on its own, a request carries one slot's input, and its commitment is keccak of
    that slot's hash instance in a real proof of the batch."""
    onnx, sample, cal = write_tiny_model(tmp_path / "m", batch=2)
    options = CompileOptions(
        dev_srs=True,
        max_logrows=TINY_MAX_LOGROWS,
        batch_size=2,
        input_visibility="hashed",
        verifier_limit=TINY_HASHED_VERIFIER_LIMIT,
    )
    compile_model(onnx, sample, tmp_path / "bundle", calibration=cal, options=options)
    bundle = b.load_bundle(tmp_path / "bundle")
    assert market_slots(bundle.manifest) is not None
    config = model_config(bundle, "0x" + "11" * 20, DeployOptions())
    assert (config.batch_size, config.input_count, config.output_count) == (2, 1, 2)
    one = write_json(tmp_path / "one.json", tiny_input(1))
    values = load_request_input(bundle, one)
    commitment, _ = encode_request_input(bundle, values)
    proven = prove_batch(bundle, [tiny_input(0), tiny_input(1)])
    (rows,) = proven.document["instances"]
    slot_one = int.from_bytes(bytes.fromhex(rows[config.input_offset + 1]), "little")
    assert commitment == input_commitment([slot_one])


def test_a_request_of_a_batch_model_carries_one_slot_and_refuses_a_whole_batch(
    tiny_batch: Compiled, tmp_path: Path
) -> None:
    one = write_json(tmp_path / "one.json", tiny_input(2))
    doc = encode_request(tiny_batch.bundle.root, one, "0x" + "22" * 20)
    assert doc["slots"] == 4
    # the commitment is over slot 0's input instances of a proof with this input at slot 0
    proven = prove_batch(tiny_batch.bundle, [tiny_input(2)])
    instances = [felt_from_hex(h) for h in proven.document["instances"][0]]
    assert doc["input_commitment"] == "0x" + input_commitment(instances[0:3]).hex()
    with pytest.raises(InputError):
        load_request_input(tiny_batch.bundle, tiny_batch.sample)  # 4 rows: a whole batch


def test_the_worker_settles_several_requests_in_one_transaction_as_single_proofs_would(
    batch_market: BatchMarket, tiny_batch: Compiled, tmp_path: Path
) -> None:
    bundle = tiny_batch.bundle.root
    ids = [_request(batch_market, bundle, tmp_path, i) for i in (3, 4, 5)]
    outcomes = serve_requests(
        batch_market.provider, batch_market.address, [bundle], workdir=tmp_path / "w", once=True
    )
    assert sorted((o.request_id, o.status) for o in outcomes) == [(i, "fulfilled") for i in ids]
    assert len({o.transactions["fulfill"].tx_hash for o in outcomes}) == 1  # one transaction
    market = batch_market.provider.contract(load_artifact("InferenceMarket"), batch_market.address)
    tx = outcomes[0].transactions["fulfill"]
    assert len(events_of(market, "InferenceFulfilled", tx)) == 3
    for request_id, i in zip(ids, (3, 4, 5), strict=True):
        outcome = next(o for o in outcomes if o.request_id == request_id)
        assert outcome.outputs == _single_proof_outputs(tiny_batch, i)
        assert read_request(batch_market.requester, batch_market.address, request_id).status is (
            Status.FULFILLED
        )


def test_the_worker_leaves_out_a_settled_request_and_one_locked_by_another(
    batch_market: BatchMarket, tiny_batch: Compiled, tmp_path: Path
) -> None:
    m, bundle = batch_market, tiny_batch.bundle.root
    settled, free, locked, last = (_request(m, bundle, tmp_path, i) for i in (6, 7, 8, 9))
    # settled alone by `fulfill`, as slot 0 of a proof padded elsewhere
    request = read_request(m.other, m.address, settled)
    proof = prove_request(bundle, request, tmp_path / "alone.json")
    fulfill_request(m.other, m.address, bundle, settled, proof)
    market = m.other.contract(load_artifact("InferenceMarket"), m.address)
    stake = MarketContract(m.other, m.address).get_model(m.registration).config.min_lock_stake
    m.other.transact(market.functions.lockRequest(locked), "lock", value=stake)

    outcomes = serve_requests(m.provider, m.address, [bundle], workdir=tmp_path / "w", once=True)
    by_id = {o.request_id: o for o in outcomes}
    assert by_id[settled].status == "skipped" and "fulfilled" in by_id[settled].detail
    assert locked not in by_id  # looked at again once the lock may have lapsed
    assert by_id[free].status == by_id[last].status == "fulfilled"
    assert by_id[free].transactions["fulfill"] == by_id[last].transactions["fulfill"]
    assert read_request(m.other, m.address, locked).status is Status.OPEN


def test_fulfill_batch_refuses_what_the_market_would_before_sending(
    batch_market: BatchMarket, tiny_batch: Compiled, tmp_path: Path
) -> None:
    m, bundle = batch_market, tiny_batch.bundle
    a, c = (_request(m, bundle.root, tmp_path, i) for i in (10, 11))
    values = [load_request_input(bundle, write_json(tmp_path / f"{i}.json", tiny_input(i)))
              for i in (10, 11)]  # fmt: skip
    proof = prove_slots(bundle, values, tmp_path / "batch.json")
    with pytest.raises(UsageError, match="listed twice"):
        fulfill_batch(m.provider, m.address, bundle.root, [a, a], [0, 1], proof)
    with pytest.raises(UsageError, match="distinct"):
        fulfill_batch(m.provider, m.address, bundle.root, [a, c], [0, 0], proof)
    with pytest.raises(UsageError, match=f"another input at slot 2 than request {c} "):
        fulfill_batch(m.provider, m.address, bundle.root, [a, c], [0, 2], proof)  # c is at 1
    done = fulfill_batch(m.provider, m.address, bundle.root, [c, a], [1, 0], proof)
    assert [r.request_id for r in done.results] == [c, a]
    assert done.to_json()["requests"][0]["slot"] == 1


def test_a_request_settled_by_someone_else_after_the_worker_proved_fails_no_request(
    batch_market: BatchMarket, tiny_batch: Compiled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prover.chain import worker_batch

    m, bundle = batch_market, tiny_batch.bundle.root
    first, second, third = (_request(m, bundle, tmp_path, i) for i in (12, 13, 14))
    competitor = prove_request(
        bundle, read_request(m.other, m.address, second), tmp_path / "competitor.json"
    )
    real = fulfill_batch

    def raced(client: ChainClient, *args: object, **kwargs: object) -> object:
        # another provider's fulfil of `second` is mined after the worker's re-read, before
        # its own checks: fulfill_batch refuses the batch (UsageError) before sending anything
        fulfill_request(m.other, m.address, bundle, second, competitor)
        monkeypatch.setattr(worker_batch, "fulfill_batch", real)
        return real(client, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(worker_batch, "fulfill_batch", raced)
    workdir = tmp_path / "w"
    outcomes = serve_requests(m.provider, m.address, [bundle], workdir=workdir, once=True)
    assert {o.status for o in outcomes} == {"retry"}  # none failed for good
    assert read_request(m.other, m.address, second).status is Status.FULFILLED

    again = serve_requests(m.provider, m.address, [bundle], workdir=workdir, once=True)
    by_id = {o.request_id: o for o in again}
    assert by_id[first].status == by_id[third].status == "fulfilled"
    assert by_id[first].transactions["fulfill"] == by_id[third].transactions["fulfill"]
    assert second not in by_id or by_id[second].status == "skipped"
