"""Whether a request is worth serving: the provider's rules on reward, gas cost and consumers.

A request can cost its provider more than it pays: a 1-wei reward, or a consumer contract whose
callback burns all the gas the market forwards to it, which the provider pays for in the fulfil
transaction. :func:`decide` is a pure function of the request, the gas serving it takes and the
gas price, so that it is tested without a chain; the worker gathers those numbers and calls it
once per request, before proving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from prover.chain.client import ZERO_ADDRESS
from prover.chain.market import OnChainRequest

__all__ = [
    "CALLBACK_GAS",
    "LOCK_GAS",
    "Decision",
    "WorkerPolicy",
    "decide",
    "fulfil_gas_estimate",
]

#: ``fulfil`` gas, measured on anvil for the reference models (docs/onchain.md#gas): 722,998 for
#: 32 public instances, 938,741 and 1,181,273 for 74. A line over the largest of them.
_FULFIL_GAS_BASE = 375_000
_FULFIL_GAS_PER_INSTANCE = 11_000
#: The market forwards 200,000 gas to a consumer's callback, all of which a hostile one burns.
CALLBACK_GAS = 210_000
#: ``lockRequest`` took 84,608 gas.
LOCK_GAS = 90_000


def fulfil_gas_estimate(instances: int) -> int:
    """Gas of a ``fulfil`` without a consumer, for a model with ``instances`` public instances,
    until the worker has measured one of its own."""
    return _FULFIL_GAS_BASE + _FULFIL_GAS_PER_INSTANCE * instances


@dataclass(frozen=True)
class WorkerPolicy:
    """What a provider is willing to serve."""

    #: Never serve a request paying less than this, whatever gas costs.
    min_reward_wei: int = 10**15
    #: The reward must be at least this multiple of the estimated gas cost of serving it.
    cost_margin: float = 1.5
    #: Serve only requests that name no consumer contract (no callback to pay for).
    refuse_consumers: bool = False


@dataclass(frozen=True)
class Decision:
    """Take the request, or skip it and say why."""

    take: bool
    reason: str = ""
    #: False when a later look may decide otherwise (the gas price changes; the reward does not).
    final: bool = True
    gas: int = 0
    cost_wei: int = 0


def decide(
    request: OnChainRequest,
    policy: WorkerPolicy,
    *,
    fulfil_gas: int,
    gas_price_wei: int,
    lock: bool,
) -> Decision:
    """Whether serving ``request`` pays: its consumer, its reward against the minimum, and its
    reward against the gas of fulfilling it (plus the callback and the lock) at ``gas_price_wei``.
    """
    has_consumer = int(request.consumer, 16) != int(ZERO_ADDRESS, 16)
    gas = fulfil_gas + (CALLBACK_GAS if has_consumer else 0) + (LOCK_GAS if lock else 0)
    cost = gas * gas_price_wei
    if has_consumer and policy.refuse_consumers:
        return Decision(
            False, f"it names consumer contract {request.consumer}; this worker serves none", True
        )
    reward = request.reward_wei
    if reward < policy.min_reward_wei:
        return Decision(
            False,
            f"reward {reward} wei is below the minimum of {policy.min_reward_wei} wei",
            True,
            gas,
            cost,
        )
    needed = math.ceil(Decimal(cost) * Decimal(str(policy.cost_margin)))
    if reward < needed:
        return Decision(
            False,
            f"reward {reward} wei is less than {policy.cost_margin:g} times the estimated cost "
            f"of serving it, {cost} wei ({gas:,} gas at {gas_price_wei} wei)",
            False,
            gas,
            cost,
        )
    return Decision(True, "", True, gas, cost)
