"""The market's structs are read by name through one typed layer, and web3's exceptions become
the project's errors in one place (``ChainClient.rpc``), checked against a real anvil node."""

from __future__ import annotations

import ast
import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from web3.types import RPCEndpoint

from prover.chain.abi_types import (
    MarketAbi,
    MarketContract,
    MarketRequest,
    ModelConfig,
    Registration,
    Status,
    market_abi,
)
from prover.chain.client import ChainClient
from prover.chain.contracts import _canonical_type, load_artifact
from prover.errors import (
    ArtifactError,
    ChainError,
    RpcUnavailable,
    TransactionReverted,
    WrongChainError,
)
from tests.helpers.chain import Anvil

ABI = load_artifact("InferenceMarket").abi
REQUESTER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
CONSUMER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _function(abi: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in abi if i.get("type") == "function" and i.get("name") == name)


def _struct(abi: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    components: list[dict[str, Any]] = _function(abi, name)["outputs"][0]["components"]
    return components


def _request_values() -> dict[str, Any]:
    """A request's fields by ABI name, each value distinct so that a swap cannot go unseen."""
    return {
        "registrationId": b"\x11" * 32,
        "requester": REQUESTER,
        "consumer": CONSUMER,
        "deadline": 1_700_000_000,
        "status": 2,
        "outputsPacked": True,
        "reward": 10**16,
        "inputCommitment": b"\x22" * 32,
        "lockedBy": REQUESTER,
        "lockDeadline": 1_700_000_600,
        "lockStake": 7,
    }


def _roundtrip(components: list[dict[str, Any]], values: dict[str, Any]) -> tuple[Any, ...]:
    """What web3 hands back for a struct: the ABI-encoded values decoded positionally."""
    types = [_canonical_type(c) for c in components]
    ordered = [values[c["name"]] for c in components]
    struct = f"({','.join(types)})"
    (decoded,) = abi_decode([struct], abi_encode([struct], [ordered]))
    return tuple(decoded)


def test_every_struct_field_of_the_shipped_abi_maps_to_a_dataclass_field() -> None:
    """Each ABI component has exactly one field of the same name (camelCase) and the other way."""
    model = _struct(ABI, "getModel")
    config = next(c for c in model if c["name"] == "config")["components"]
    for cls, components in (
        (Registration, model),
        (ModelConfig, config),
        (MarketRequest, _struct(ABI, "getRequest")),
    ):
        names = {c["name"] for c in components}
        fields = {f.metadata.get("abi", _camel(f.name)) for f in dataclasses.fields(cls)}
        assert names == fields, cls.__name__
    market_abi()  # binds without error


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def test_a_reordered_struct_decodes_by_name_not_by_position() -> None:
    """The same request encoded with the fields of ``Request`` reversed (as a reordered Solidity
    struct would return it) decodes to the same values through an ABI that says so."""
    values = _request_values()
    shipped = market_abi().decode_request(_roundtrip(_struct(ABI, "getRequest"), values))
    permuted_abi = copy.deepcopy(ABI)
    _function(permuted_abi, "getRequest")["outputs"][0]["components"].reverse()
    raw = _roundtrip(_struct(permuted_abi, "getRequest"), values)
    assert raw[0] == 7 and raw[-1] == b"\x11" * 32  # the positions did move
    assert MarketAbi(permuted_abi).decode_request(raw) == shipped
    assert shipped == MarketRequest(
        registration_id=b"\x11" * 32,
        requester=REQUESTER,
        consumer=CONSUMER,
        deadline=1_700_000_000,
        status=Status.FULFILLED,
        outputs_packed=True,
        reward_wei=10**16,
        input_commitment=b"\x22" * 32,
        locked_by=REQUESTER,
        lock_deadline=1_700_000_600,
        lock_stake=7,
    )


def test_a_reordered_model_config_is_read_and_encoded_by_name() -> None:
    permuted_abi = copy.deepcopy(ABI)
    for components in (
        next(c for c in _struct(permuted_abi, "getModel") if c["name"] == "config")["components"],
        _function(permuted_abi, "registerModel")["inputs"][1]["components"],
    ):
        components.reverse()
    config = ModelConfig(REQUESTER, b"\x01" * 32, b"\x02" * 32, 35, 0, 30, 33, 2, 1, 7, 8, 9, 60)
    bound = MarketAbi(permuted_abi)
    encoded = bound.encode_config(config)
    assert encoded[0] == 60 and encoded[-1] == REQUESTER  # lockDuration first, verifier last
    assert market_abi().encode_config(config)[0] == REQUESTER
    assert config.as_abi() == market_abi().encode_config(config)
    model = _struct(permuted_abi, "getModel")  # its config reversed as registerModel's is
    raw = _roundtrip(model, {
        "config": encoded, "verifierCodeHash": b"\x03" * 32, "owner": CONSUMER,
        "paused": True, "modelId": b"\x04" * 32, "registrant": REQUESTER,
    })  # fmt: skip
    registration = bound.decode_model(raw)
    assert registration.config == config and registration.paused is True and registration.exists


def test_a_renamed_missing_or_retyped_field_fails_at_load_not_at_read() -> None:
    renamed = copy.deepcopy(ABI)
    next(c for c in _struct(renamed, "getRequest") if c["name"] == "reward")["name"] = "bounty"
    with pytest.raises(ArtifactError, match=r"Request struct.*missing \['reward'\].*\['bounty'\]"):
        MarketAbi(renamed)
    missing = copy.deepcopy(ABI)
    del _struct(missing, "getModel")[3]  # paused
    with pytest.raises(ArtifactError, match=r"Model struct.*missing \['paused'\]"):
        MarketAbi(missing)
    retyped = copy.deepcopy(ABI)
    next(c for c in _struct(retyped, "getRequest") if c["name"] == "lockedBy")["type"] = "uint256"
    with pytest.raises(ArtifactError, match=r"Request\.lockedBy is a uint256"):
        MarketAbi(retyped)
    nested = copy.deepcopy(ABI)
    config = next(c for c in _struct(nested, "getModel") if c["name"] == "config")
    config["components"][0]["name"] = "checker"
    with pytest.raises(ArtifactError, match=r"Model\.config struct.*missing \['verifier'\]"):
        MarketAbi(nested)


# --- web3's exceptions, mapped once in ChainClient.rpc, on a real node ----------------------------


@pytest.mark.anvil
def test_web3_exceptions_become_the_projects_errors_inside_the_client(anvil: Anvil) -> None:
    client = anvil.client()
    market = str(client.deploy(load_artifact("InferenceMarket"), "deploy market").contract_address)
    contract = MarketContract(client, market).contract
    unknown = b"\x99" * 32
    # a custom-error revert of a view call through the raw rpc() wrapper, not only call()
    with pytest.raises(TransactionReverted) as reverted:
        client.rpc("read the layout", contract.functions.layoutHashOf(unknown).call)
    assert reverted.value.error_name == "InferenceMarketUnknownModel"
    # an error answer of the node itself: a ChainError naming what was being done
    nothing = RPCEndpoint("no_such_method")
    with pytest.raises(ChainError, match="ask for nothing: the RPC answered with an error") as rpc:
        client.rpc("ask for nothing", lambda: client.w3.manager.request_blocking(nothing, []))
    assert type(rpc.value) is ChainError
    # a contract that returns nothing (no code there): no answer, not a web3 exception
    nowhere = MarketContract(client, "0x" + "42" * 20)
    with pytest.raises(TransactionReverted, match="read the model: the contract returned no"):
        nowhere.get_model(unknown)


@pytest.mark.anvil
def test_an_unreachable_rpc_and_another_chain_are_the_error_trees_too(anvil: Anvil) -> None:
    with pytest.raises(RpcUnavailable, match="cannot read the chain id"):
        ChainClient.connect("http://127.0.0.1:9", retries=0)
    with pytest.raises(WrongChainError, match="serves chain id 31337, not the expected 1"):
        ChainClient.connect(anvil.url, expected_chain_id=1)


def test_no_module_but_the_client_handles_web3_or_requests_exceptions() -> None:
    """The mapping lives in one place: nothing else in the package imports web3's exceptions, and
    nothing else in the chain layer imports requests (web3's HTTP transport), so a new
    ``except Web3RPCError`` outside the client cannot creep in."""
    package = Path(__file__).resolve().parents[1] / "prover"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "chain" / "client.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            in_chain = path.parent == package / "chain"  # requests is web3's transport there
            offenders += [
                f"{path.relative_to(package)}: {n}"
                for n in names
                if n.startswith("web3.exceptions")
                or (in_chain and (n == "requests" or n.startswith("requests.")))
            ]
    assert offenders == []


@pytest.mark.anvil
def test_the_typed_accessors_read_an_empty_registration_and_request(anvil: Anvil) -> None:
    client = anvil.client(None)
    owner = anvil.client()
    market = str(owner.deploy(load_artifact("InferenceMarket"), "deploy market").contract_address)
    reader = MarketContract(client, market)
    empty = reader.get_model(b"\x01" * 32)
    assert not empty.exists and empty.config.verifier == "0x" + "00" * 20
    assert reader.get_request(12345).status is Status.NONE
