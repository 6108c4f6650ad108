"""The worker's rules on reward, gas cost and consumers, as a pure function (no chain needed)."""

from __future__ import annotations

import pytest

from prover.chain.client import ZERO_ADDRESS
from prover.chain.market import OnChainRequest, Status
from prover.chain.worker_policy import (
    CALLBACK_GAS,
    LOCK_GAS,
    WorkerPolicy,
    decide,
    fulfil_gas_estimate,
)

GWEI = 10**9
CONSUMER = "0x" + "ab" * 20


def _request(reward_wei: int, consumer: str = ZERO_ADDRESS) -> OnChainRequest:
    return OnChainRequest(
        request_id=7,
        registration_id="22" * 32,
        model_id="00" * 32,
        requester="0x" + "11" * 20,
        consumer=consumer,
        deadline=10**10,
        status=Status.OPEN,
        reward_wei=reward_wei,
        commitment=b"\x00" * 32,
        locked_by=ZERO_ADDRESS,
        lock_deadline=0,
    )


def test_a_one_wei_request_is_skipped_for_good_whatever_gas_costs() -> None:
    d = decide(_request(1), WorkerPolicy(), fulfil_gas=700_000, gas_price_wei=0, lock=False)
    assert not d.take and d.final
    assert d.reason == "reward 1 wei is below the minimum of 1000000000000000 wei"


def test_a_consumer_is_refused_only_when_the_provider_says_so() -> None:
    rich = _request(10**18, CONSUMER)
    for refuse in (False, True):
        policy = WorkerPolicy(refuse_consumers=refuse)
        d = decide(rich, policy, fulfil_gas=700_000, gas_price_wei=GWEI, lock=False)
        assert d.take is not refuse
    refused = decide(
        rich, WorkerPolicy(refuse_consumers=True), fulfil_gas=0, gas_price_wei=0, lock=False
    )
    assert not refused.take and refused.final and CONSUMER in refused.reason


def test_the_reward_must_cover_the_gas_of_fulfil_callback_and_lock_with_the_margin() -> None:
    gas = 700_000 + CALLBACK_GAS + LOCK_GAS
    cost = gas * 10 * GWEI
    policy = WorkerPolicy(min_reward_wei=0, cost_margin=1.5)
    short = decide(
        _request(cost * 3 // 2 - 1, CONSUMER), policy, fulfil_gas=700_000,
        gas_price_wei=10 * GWEI, lock=True,
    )  # fmt: skip
    assert not short.take and not short.final  # the gas price may fall: look again later
    assert (short.gas, short.cost_wei) == (gas, cost)
    assert f"estimated cost of serving it, {cost} wei (1,000,000 gas at" in short.reason
    enough = decide(
        _request(cost * 3 // 2, CONSUMER), policy, fulfil_gas=700_000,
        gas_price_wei=10 * GWEI, lock=True,
    )  # fmt: skip
    assert enough.take
    no_extras = decide(
        _request(700_000 * 10 * GWEI * 3 // 2), policy, fulfil_gas=700_000,
        gas_price_wei=10 * GWEI, lock=False,
    )  # fmt: skip
    assert no_extras.take and no_extras.gas == 700_000


@pytest.mark.parametrize(
    ("instances", "measured"),
    [(32, 722_998), (74, 938_741), (74, 1_181_273)],  # docs/onchain.md#gas
)
def test_the_prior_fulfil_estimate_covers_the_measured_reference_models(
    instances: int, measured: int
) -> None:
    assert measured <= fulfil_gas_estimate(instances) <= measured * 13 // 10
