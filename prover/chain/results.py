"""Reading what the market holds, getting paid, and what a consumer contract needs.

``read_result`` is what a dApp developer reads after a request (status and proven outputs, as
floats and as the class where labels are known), ``withdraw`` is how a provider is paid, and
``encode_request`` prints, without sending anything, exactly what a contract passes to
``requestInference`` and pins (docs/onchain.md, "Encoding", is the one description of it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prover.chain.abi_types import MARKET, MarketContract, Status
from prover.chain.client import ZERO_ADDRESS, ChainClient, TxResult
from prover.chain.contracts import load_artifact, verifier_artifact
from prover.chain.deploy import layout_hash, registration_id
from prover.chain.market import encode_request_input
from prover.chain.slots import load_request_input, market_slots
from prover.core import bundle as b
from prover.core.fields import signed_to_float
from prover.errors import ChainError, InputError, UsageError

__all__ = [
    "RequestState",
    "encode_request",
    "load_labels",
    "owed_wei",
    "read_result",
    "wait_for_result",
    "withdraw",
]


def load_labels(path: Path | None) -> list[str] | None:
    """Class names from a JSON list of strings (one per output), or ``None`` without a file."""
    if path is None:
        return None
    try:
        labels = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read it as JSON ({exc})", field="labels") from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise InputError(
            f'{path}: expected a JSON list of class names, e.g. ["a", "b"]', field="labels"
        )
    return labels


@dataclass(frozen=True)
class RequestState:
    """A request as ``zkinfer result`` shows it."""

    request_id: int
    status: Status
    registration_id: str
    model_id: str
    requester: str
    consumer: str
    reward_wei: int
    deadline: int
    locked_by: str | None
    outputs: list[float] | None
    outputs_fixed_point: list[int] | None
    output_scale: int
    label: str | None

    def to_json(self) -> dict[str, Any]:
        """The state as ``zkinfer result --json`` prints it."""
        return {
            "request_id": self.request_id,
            "status": self.status.name.lower(),
            "registration_id": self.registration_id,
            "model_id": self.model_id,
            "requester": self.requester,
            "consumer": self.consumer if self.consumer != ZERO_ADDRESS else None,
            "reward_wei": self.reward_wei,
            "deadline": self.deadline,
            "locked_by": self.locked_by,
            "outputs": self.outputs,
            "outputs_fixed_point": self.outputs_fixed_point,
            "output_scale": self.output_scale,
            "label": self.label,
        }


def read_result(
    client: ChainClient, market: str, request_id: int, labels: list[str] | None = None
) -> RequestState:
    """The request's status and, once fulfilled, its proven outputs as the market stored them."""
    reader = MarketContract(client, market)
    contract = reader.contract
    r = reader.get_request(request_id)
    status = r.status
    if status is Status.NONE:
        raise UsageError(f"request {request_id} does not exist on market {market}")
    model = reader.get_model(r.registration_id, "read the request's model")
    scale = model.config.output_scale
    fixed: list[int] | None = None
    floats: list[float] | None = None
    label = None
    if status is Status.FULFILLED:
        fixed = [int(v) for v in client.call(contract.functions.outputsOf(request_id), "outputs")]
        floats = [signed_to_float(v, scale) for v in fixed]
        if labels is not None:
            if len(labels) != len(fixed):
                raise InputError(
                    f"names {len(labels)} classes, the model has {len(fixed)} outputs",
                    field="labels",
                )
            label = labels[max(range(len(fixed)), key=fixed.__getitem__)]
    locked = r.locked_by
    return RequestState(
        request_id=request_id,
        status=status,
        registration_id="0x" + r.registration_id.hex(),
        model_id=model.model_id.hex(),
        requester=r.requester,
        consumer=r.consumer,
        reward_wei=r.reward_wei,
        deadline=r.deadline,
        locked_by=None if int(locked, 16) == 0 else locked,
        outputs=floats,
        outputs_fixed_point=fixed,
        output_scale=scale,
        label=label,
    )


def wait_for_result(
    client: ChainClient,
    market: str,
    request_id: int,
    *,
    timeout_s: float,
    poll_s: float = 2.0,
    labels: list[str] | None = None,
) -> RequestState:
    """Poll until the request leaves ``open`` (fulfilled or refunded); :class:`ChainError` after
    ``timeout_s`` with the request still open."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = read_result(client, market, request_id, labels)
        if state.status is not Status.OPEN:
            return state
        if time.monotonic() >= deadline:
            raise ChainError(
                f"request {request_id} is still open after {timeout_s:.0f} s: no provider has "
                f"settled it yet; `zkinfer result {request_id}` shows it later"
            )
        time.sleep(poll_s)


def owed_wei(client: ChainClient, market: str, account: str) -> int:
    """What the market owes ``account`` (rewards, returned stakes, refunds)."""
    contract = client.contract(load_artifact(MARKET), market)
    return int(client.call(contract.functions.owed(account), "read the balance owed"))


def withdraw(client: ChainClient, market: str) -> tuple[int, TxResult | None]:
    """Withdraw everything the market owes the signer; ``(0, None)`` when it owes nothing."""
    amount = owed_wei(client, market, client.address)
    if amount == 0:
        return 0, None
    contract = client.contract(load_artifact(MARKET), market)
    return amount, client.transact(contract.functions.withdraw(), "withdraw")


def encode_request(
    bundle_dir: Path, input_path: Path, registrant: str, market: str | None = None
) -> dict[str, Any]:
    """Everything a consumer contract passes to ``requestInference`` for this input, and what it
    pins for this bundle and registrant; nothing is sent."""
    bundle = b.load_bundle(Path(bundle_dir), check=b.CHAIN_FILES)
    values = load_request_input(bundle, Path(input_path))
    commitment, data = encode_request_input(bundle, values)
    m = bundle.manifest
    slots = market_slots(m)
    return {
        "model_id": "0x" + bundle.model_id,
        "registrant": registrant,
        "registration_id": "0x" + registration_id(registrant, bundle.model_id).hex(),
        "market": market,
        "input_commitment": "0x" + commitment.hex(),
        "input_data": "0x" + data.hex(),
        "verifier_code_hash": "0x"
        + verifier_artifact(bundle.path(b.VERIFIER_JSON)).runtime_code_hash.hex(),
        "layout_hash": "0x" + layout_hash(bundle).hex(),
        "input_scales": list(m.circuit.input_scales),
        "output_scales": list(m.circuit.output_scales),
        "instances": m.instances.to_json(),
        # a request of a bundle with market slots is one slot's input: the market settles
        # up to this many in one proof
        "slots": 1 if slots is None else slots.count,
        "srs_provenance": bundle.srs_provenance,
    }
