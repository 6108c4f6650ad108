"""The market from Python: request an inference, read a request, prove it, fulfil it.

A request carries two things about its input: the commitment the contract checks a proof against
(keccak256 of the input instances, i.e. of the quantized inputs or of their Poseidon hash) and
``inputData``, which the contract never reads: ``abi.encode(int256[][])``, the quantized inputs
(value × 2^scale) of each model input, from which a provider rebuilds the exact input. For a
bundle the market settles by slots (:mod:`prover.chain.slots`) both are of ONE slot's input.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from prover.chain.abi_types import MARKET, MarketContract, Status
from prover.chain.client import ZERO_ADDRESS, ChainClient, TxResult, events_of
from prover.chain.contracts import load_artifact
from prover.chain.deploy import check_registration, resolve_registration
from prover.chain.slots import (
    load_request_input,
    market_slots,
    prove_slots,
    request_input_instances,
    request_input_sizes,
)
from prover.core import bundle as b
from prover.core.expected import expected_input_instances, input_felts
from prover.core.fields import felt_from_hex, felt_to_signed, signed_to_float
from prover.core.progress import Progress
from prover.core.proofs import MalformedProof, parse_proof, read_proof_file
from prover.core.prove import prove
from prover.errors import ArtifactError, InputError, UsageError

__all__ = [
    "FulfillResult",
    "OnChainRequest",
    "RequestResult",
    "Status",
    "decode_input_data",
    "encode_request_input",
    "fulfill_request",
    "input_commitment",
    "input_data_length",
    "proof_call_args",
    "proof_commitment",
    "prove_request",
    "read_request",
    "request_inference",
    "request_values",
    "require_open",
    "settleable_request",
]


def input_commitment(instances: list[int]) -> bytes:
    """keccak256(abi.encodePacked(uint256[])): what the market compares the input instances to."""
    return keccak(b"".join(v.to_bytes(32, "big") for v in instances))


def encode_request_input(bundle: b.Bundle, values: list[list[float]]) -> tuple[bytes, bytes]:
    """The commitment and ``inputData`` of a request for ``values`` (already validated: one
    slot's input for a bundle with market slots, see :func:`~prover.chain.slots.
    load_request_input`)."""
    quantized = [[felt_to_signed(felt_from_hex(h)) for h in g] for g in input_felts(bundle, values)]
    instances = [felt_from_hex(h) for h in expected_input_instances(bundle, values)]
    return input_commitment(instances), abi_encode(["int256[][]"], [quantized])


def input_data_length(sizes: list[int]) -> int:
    """Bytes of the canonical ``abi.encode(int256[][])`` of inputs with ``sizes`` values each:
    the outer offset and length, one offset per input, and each input's length and values."""
    return 32 * (2 + 2 * len(sizes) + sum(sizes))


def decode_input_data(bundle: b.Bundle, data: bytes) -> list[list[float]]:
    """Rebuild a request's input values from its ``inputData``; :class:`InputError` if malformed.

    Only the canonical encoding for the sizes of one request's input (one slot's for a bundle
    with market slots) is accepted, and its exact length is
    checked before anything is read: ABI offsets may alias, so a general decoder turns a little
    calldata into gigabytes of values (a request is untrusted, and a worker re-reads it after a
    restart). Every value is then read once, in place.
    """
    m = bundle.manifest
    sizes = request_input_sizes(m)
    want = input_data_length(sizes)
    if len(data) != want:
        raise InputError(
            f"the request's inputData is {len(data)} bytes, not the {want} bytes of "
            f"abi.encode(int256[][]) for this model's {sizes} input values"
        )
    words = [int.from_bytes(data[i : i + 32], "big") for i in range(0, len(data), 32)]
    head = [32, len(sizes)]  # the outer array's offset and length
    offset = 32 * len(sizes)  # inner offsets count from the outer array's first offset word
    for n in sizes:
        head.append(offset)
        offset += 32 * (1 + n)
    groups: list[list[int]] = []
    at = len(head)
    for n in sizes:
        if words[at] != n:
            break
        groups.append([w - (1 << 256) if w >> 255 else w for w in words[at + 1 : at + 1 + n]])
        at += 1 + n
    if words[: len(head)] != head or len(groups) != len(sizes):
        raise InputError(
            "the request's inputData is not the canonical abi.encode(int256[][]) of this "
            f"model's {sizes} input values (its offsets or lengths differ)"
        )
    scales = m.circuit.input_scales
    return [[signed_to_float(q, s) for q in g] for g, s in zip(groups, scales, strict=True)]


@dataclass(frozen=True)
class RequestResult:
    """A request placed on chain."""

    request_id: int
    registration_id: str
    commitment: str
    reward_wei: int
    deadline: int
    tx: TxResult

    def to_json(self) -> dict[str, Any]:
        """The result as ``zkinfer request --json`` prints it."""
        return {
            "request_id": self.request_id,
            "registration_id": self.registration_id,
            "input_commitment": self.commitment,
            "reward_wei": self.reward_wei,
            "deadline": self.deadline,
            "transaction": self.tx.to_json(),
        }


@dataclass(frozen=True)
class OnChainRequest:
    """A request as the market stores it (with its registration's model id), plus the input data
    from its event."""

    request_id: int
    registration_id: str
    model_id: str
    requester: str
    consumer: str
    deadline: int
    status: Status
    reward_wei: int
    commitment: bytes
    locked_by: str
    lock_deadline: int
    input_data: bytes = field(repr=False, default=b"")


@dataclass(frozen=True)
class FulfillResult:
    """A settled request: its proven outputs as the market stored them."""

    request_id: int
    outputs: list[float]
    outputs_fixed_point: list[int]
    output_scale: int
    tx: TxResult
    callback_failed: bool

    def to_json(self) -> dict[str, Any]:
        """The result as ``zkinfer fulfill --json`` prints it."""
        return {
            "request_id": self.request_id,
            "outputs": self.outputs,
            "outputs_fixed_point": self.outputs_fixed_point,
            "output_scale": self.output_scale,
            "consumer_callback_failed": self.callback_failed,
            "transaction": self.tx.to_json(),
        }


def request_inference(
    client: ChainClient,
    market: str,
    bundle_dir: Path,
    input_path: Path,
    *,
    reward_wei: int,
    deadline_s: int = 3600,
    consumer: str | None = None,
    registrant: str | None = None,
) -> RequestResult:
    """Escrow ``reward_wei`` for a proven inference of the bundle's model on ``input_path``.

    The registration (by ``registrant``, default: the one ``deploy`` recorded) is checked against
    the bundle first: no reward is escrowed for results another verifier would accept. A
    ``consumer`` must be a contract: it is called back with the outputs, and accepts them only
    if it trusts this request's requester (the signing account).
    """
    if reward_wei <= 0:
        raise UsageError("must be more than zero", field="reward_wei")
    bundle = b.load_bundle(Path(bundle_dir), check=b.CHAIN_FILES)
    values = load_request_input(bundle, Path(input_path))
    registration = resolve_registration(client, bundle, registrant)
    check_registration(client, market, bundle, registration)
    if consumer is not None and client.code_hash(consumer) == keccak(b""):
        raise UsageError(
            f"{consumer}: no contract there",
            field="consumer",
            hint="a consumer is a contract implementing IInferenceConsumer (see docs/onchain.md)",
        )
    commitment, data = encode_request_input(bundle, values)
    contract = client.contract(load_artifact(MARKET), market)
    deadline = client.now() + deadline_s
    fn = contract.functions.requestInference(
        registration,
        commitment,
        data,
        deadline,
        consumer or ZERO_ADDRESS,
    )
    tx = client.transact(fn, "request inference", value=reward_wei)
    events = events_of(contract, "InferenceRequested", tx)
    if len(events) != 1:
        raise ArtifactError("the request transaction emitted no InferenceRequested event")
    return RequestResult(
        int(events[0]["args"]["requestId"]),
        "0x" + registration.hex(),
        "0x" + commitment.hex(),
        reward_wei,
        deadline,
        tx,
    )


def read_request(
    client: ChainClient,
    market: str,
    request_id: int,
    input_data: bytes | None = None,
    from_block: int = 0,
) -> OnChainRequest:
    """The request's stored state, and the ``inputData`` of its event (searched for from
    ``from_block`` unless the caller already has it from the event)."""
    reader = MarketContract(client, market)
    contract = reader.contract
    r = reader.get_request(request_id)
    if r.status is Status.NONE:
        raise UsageError(f"request {request_id} does not exist on market {market}")
    if input_data is None:
        logs = client.rpc(
            "read request events",
            lambda: contract.events.InferenceRequested().get_logs(
                from_block=from_block, argument_filters={"requestId": request_id}
            ),
        )
        if not logs:
            raise UsageError(
                f"{from_block}: no InferenceRequested event for request {request_id} from this "
                "block on",
                field="from_block",
                hint="pass an earlier block",
            )
        input_data = bytes(logs[0]["args"]["inputData"])
    model = reader.get_model(r.registration_id, "read the request's model")
    return OnChainRequest(
        request_id=request_id,
        registration_id=r.registration_id.hex(),
        model_id=model.model_id.hex(),
        requester=r.requester,
        consumer=r.consumer,
        deadline=r.deadline,
        status=r.status,
        reward_wei=r.reward_wei,
        commitment=r.input_commitment,
        locked_by=r.locked_by,
        lock_deadline=r.lock_deadline,
        input_data=input_data,
    )


def require_open(client: ChainClient, request: OnChainRequest) -> None:
    """:class:`UsageError` unless the request can still be fulfilled: checked before proving, so
    that a settled or expired request costs no proof and no reverted transaction."""
    rid = request.request_id
    if request.status is not Status.OPEN:
        raise UsageError(
            f"request {rid} is already {request.status.name.lower()}: nothing to fulfil "
            f"(`zkinfer result {rid}` shows it)"
        )
    if client.now() > request.deadline:
        raise UsageError(f"request {rid} is past its deadline: it can only be refunded now")


def _check_model(bundle: b.Bundle, request: OnChainRequest) -> None:
    if bundle.model_id != request.model_id:
        raise UsageError(
            f"request {request.request_id} is for model {request.model_id[:16]}…, the bundle "
            f"holds {bundle.model_id[:16]}…"
        )


def settleable_request(
    client: ChainClient, market: str, bundle: b.Bundle, request_id: int
) -> OnChainRequest:
    """Request ``request_id`` (without its event's ``inputData``) if it is open, not expired and
    of the bundle's model; else :class:`UsageError`."""
    request = read_request(client, market, request_id, input_data=b"")  # no event search
    require_open(client, request)
    _check_model(bundle, request)
    return request


def request_values(bundle: b.Bundle, request: OnChainRequest) -> list[list[float]]:
    """The request's input rebuilt from its ``inputData``; :class:`UsageError` when it is for
    another model, :class:`InputError` when its data does not match its commitment."""
    _check_model(bundle, request)
    values = decode_input_data(bundle, request.input_data)
    commitment, _ = encode_request_input(bundle, values)
    if commitment != request.commitment:
        raise InputError(
            f"request {request.request_id}: its inputData does not match its input commitment, "
            "so no proof can settle it"
        )
    return values


def prove_request(
    bundle_dir: Path, request: OnChainRequest, out: Path, progress: Progress | None = None
) -> Path:
    """Prove the request's input (at slot 0, the other slots padding, for a bundle with market
    slots); refuse when its data does not match its commitment."""
    bundle = b.load_bundle(Path(bundle_dir), check=b.CHAIN_FILES)
    values = request_values(bundle, request)
    if market_slots(bundle.manifest) is not None:
        return prove_slots(bundle, [values], out, progress)
    with tempfile.TemporaryDirectory(prefix="zkinfer-request-") as tmp:
        data = Path(tmp) / "input.json"
        data.write_text(json.dumps({"input_data": values}))
        prove(bundle.root, data, out, progress=progress)
    return out


def _input_commitment_of(bundle: b.Bundle, instances: list[int], slot: int = 0) -> bytes:
    return input_commitment(request_input_instances(bundle.manifest, instances, slot))


def proof_commitment(bundle: b.Bundle, proof_path: Path, slot: int = 0) -> bytes:
    """The input commitment a proof file's instances make at ``slot``: the one a request settled
    there must carry (the whole input part for a bundle without market slots)."""
    return _input_commitment_of(bundle, proof_call_args(bundle, proof_path)[1], slot)


def proof_call_args(bundle: b.Bundle, proof_path: Path) -> tuple[bytes, list[int]]:
    m = bundle.manifest
    try:
        parsed = parse_proof(
            read_proof_file(proof_path),
            expected_instances=m.instances.total,
            expected_bytes=m.proof_bytes,
        )
    except MalformedProof as exc:
        raise UsageError(f"{proof_path}: {exc}") from None
    return bytes(parsed.proof), [felt_from_hex(h) for h in parsed.instances]


def fulfill_request(
    client: ChainClient, market: str, bundle_dir: Path, request_id: int, proof_path: Path
) -> FulfillResult:
    """Submit a proof for ``request_id`` (settled as slot 0 of a batch proof); the market checks
    it with the pinned verifier."""
    bundle = b.load_bundle(Path(bundle_dir), check=b.CHAIN_FILES)
    proof, instances = proof_call_args(bundle, proof_path)
    request = settleable_request(client, market, bundle, request_id)
    if _input_commitment_of(bundle, instances) != request.commitment:
        raise UsageError(
            f"{proof_path} proves another input than request {request_id} committed to"
        )
    reader = MarketContract(client, market)
    contract = reader.contract
    tx = client.transact(contract.functions.fulfill(request_id, proof, instances), "fulfill")
    done = events_of(contract, "InferenceFulfilled", tx)
    failed = events_of(contract, "ConsumerCallbackFailed", tx)
    fixed = [int(v) for v in done[0]["args"]["outputs"]] if done else []
    registration = bytes.fromhex(request.registration_id)
    scale = reader.get_model(registration, "read model").config.output_scale
    return FulfillResult(
        request_id, [signed_to_float(v, scale) for v in fixed], fixed, scale, tx, bool(failed)
    )
