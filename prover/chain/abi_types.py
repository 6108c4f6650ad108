"""The market's structs as typed, frozen values, read by name from the shipped ABI.

``getModel`` and ``getRequest`` return Solidity structs, which web3 hands back as plain tuples in
declaration order. Reading them by position (``model[0][11]``) silently misreads after any change
to a struct. Here each struct is a dataclass whose fields are bound to the ABI's component *names*
when the ABI is loaded: a reordered struct decodes correctly, and a renamed, added or removed
field, or a field whose ABI type does not fit the dataclass, fails at load with
:class:`ArtifactError`, before anything is read. ``ModelConfig`` is also encoded by name for
``registerModel``.

:class:`MarketContract` is the one way the chain layer reads the market's structs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from typing import Any, TypeVar, get_type_hints

from web3 import Web3
from web3.contract.contract import Contract

from prover.chain.client import ChainClient
from prover.chain.contracts import load_artifact
from prover.errors import ArtifactError

__all__ = [
    "MARKET",
    "MarketAbi",
    "MarketContract",
    "MarketRequest",
    "ModelConfig",
    "Registration",
    "Status",
    "market_abi",
]

MARKET = "InferenceMarket"

_S = TypeVar("_S")


class Status(IntEnum):
    """``InferenceMarket.Status``."""

    NONE = 0
    OPEN = 1
    FULFILLED = 2
    REFUNDED = 3


def _abi(name: str) -> dict[str, str]:
    """Field metadata: the ABI component name when it is not the field name in camelCase."""
    return {"abi": name}


@dataclass(frozen=True)
class ModelConfig:
    """``InferenceMarket.ModelConfig``: verifier, digests, instance layout, scales, lock terms."""

    verifier: str
    vk_digest: bytes
    settings_digest: bytes
    instance_count: int
    input_offset: int
    input_count: int
    output_offset: int
    output_count: int
    batch_size: int
    input_scale: int
    output_scale: int
    min_lock_stake: int
    lock_duration: int

    #: The fields a registration must share with the bundle it claims to register (the verifier
    #: itself is compared by its code hash; the lock terms are the registrant's choice).
    BUNDLE_FIELDS = (
        "vk_digest", "settings_digest", "instance_count", "input_offset", "input_count",
        "output_offset", "output_count", "batch_size", "input_scale", "output_scale",
    )  # fmt: skip

    def layout(self) -> tuple[int, ...]:
        """What ``layoutHashOf`` hashes: the instance layout, batch size and scales."""
        return (
            self.instance_count, self.input_offset, self.input_count, self.output_offset,
            self.output_count, self.batch_size, self.input_scale, self.output_scale,
        )  # fmt: skip

    def as_abi(self) -> tuple[Any, ...]:
        """The tuple ``registerModel`` takes, in the ABI's component order."""
        return market_abi().encode_config(self)


@dataclass(frozen=True)
class Registration:
    """``InferenceMarket.Model``: one registrant's registration of a model (all zero if none)."""

    config: ModelConfig
    verifier_code_hash: bytes
    owner: str
    paused: bool
    model_id: bytes
    registrant: str

    @property
    def exists(self) -> bool:
        """Whether anything is registered under this id (the owner of a registration is set)."""
        return int(self.owner, 16) != 0


@dataclass(frozen=True)
class MarketRequest:
    """``InferenceMarket.Request``: a request's stored state (status ``NONE`` if unknown)."""

    registration_id: bytes
    requester: str
    consumer: str
    deadline: int
    status: Status
    #: set at settlement when the outputs are stored narrower than one int256 per storage word
    #: (in the request's own state word, or two int128 per slot); ``outputsOf`` reads either
    outputs_packed: bool
    reward_wei: int = field(metadata=_abi("reward"))
    input_commitment: bytes
    locked_by: str
    lock_deadline: int
    lock_stake: int


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _abi_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("abi", _camel(f.name)))


_Converter = Callable[[Any], Any]


def _converter(struct: str, component: dict[str, Any], hint: Any) -> _Converter:
    """How to turn web3's value of ``component`` into the dataclass field's type; ArtifactError
    when the ABI type does not fit the field (a changed struct, not a misread)."""
    kind = str(component["type"])
    fits: _Converter | None = None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and kind == "tuple":
        fits = _decoder(struct + "." + str(component["name"]), component["components"], hint)
    elif isinstance(hint, type) and issubclass(hint, IntEnum) and kind.startswith("uint"):
        enum = hint
        fits = lambda v: enum(int(v))  # noqa: E731
    elif hint is int and re.fullmatch(r"u?int\d*", kind):
        fits = int
    elif hint is bytes and re.fullmatch(r"bytes\d*", kind):
        fits = bytes
    elif hint is str and kind == "address":
        fits = lambda v: Web3.to_checksum_address(str(v))  # noqa: E731
    elif hint is bool and kind == "bool":
        fits = bool
    if fits is None:
        raise ArtifactError(
            f"the {MARKET} ABI's {struct}.{component['name']} is a {kind}, which zkinfer does not "
            f"read as {getattr(hint, '__name__', hint)}: the package's contract artifact and its "
            "code disagree; reinstall zkinfer or re-export the artifacts"
        )
    return fits


def _decoder(
    struct: str, components: Sequence[dict[str, Any]], cls: type[_S]
) -> Callable[[Any], _S]:
    """A function from web3's positional tuple for ``components`` to ``cls``, bound by name."""
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    by_abi = {_abi_name(f): f for f in fields}
    names = [str(c.get("name", "")) for c in components]
    missing = sorted(set(by_abi) - set(names))
    extra = sorted(set(names) - set(by_abi))
    if missing or extra or len(set(names)) != len(names):
        raise ArtifactError(
            f"the {MARKET} ABI's {struct} struct has fields {names}; zkinfer reads "
            f"{sorted(by_abi)} (missing {missing}, unknown {extra}): the package's contract "
            "artifact and its code disagree; reinstall zkinfer or re-export the artifacts"
        )
    hints = get_type_hints(cls)
    plan = [
        (by_abi[name].name, _converter(struct, c, hints[by_abi[name].name]))
        for name, c in zip(names, components, strict=True)
    ]

    def decode(raw: Any) -> _S:
        values = tuple(raw)
        if len(values) != len(plan):
            raise ArtifactError(
                f"the market returned {len(values)} values for {struct}, its ABI has {len(plan)}"
            )
        return cls(**{name: conv(v) for (name, conv), v in zip(plan, values, strict=True)})

    return decode


def _struct_output(abi: list[dict[str, Any]], function: str) -> dict[str, Any]:
    for item in abi:
        if item.get("type") == "function" and item.get("name") == function:
            outputs = item.get("outputs", [])
            if len(outputs) == 1 and outputs[0].get("type") == "tuple":
                return dict(outputs[0])
    raise ArtifactError(
        f"the {MARKET} ABI has no {function} returning one struct; reinstall zkinfer or "
        "re-export the artifacts"
    )


def _struct_input(abi: list[dict[str, Any]], function: str, param: str) -> dict[str, Any]:
    for item in abi:
        if item.get("type") == "function" and item.get("name") == function:
            for p in item.get("inputs", []):
                if p.get("name") == param and p.get("type") == "tuple":
                    return dict(p)
    raise ArtifactError(
        f"the {MARKET} ABI has no {function} taking a struct {param}; reinstall zkinfer or "
        "re-export the artifacts"
    )


class MarketAbi:
    """The market's structs bound by name to one ABI (the shipped one: :func:`market_abi`)."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        model = _struct_output(abi, "getModel")
        request = _struct_output(abi, "getRequest")
        config = _struct_input(abi, "registerModel", "config")
        self.decode_model = _decoder("Model", model["components"], Registration)
        self.decode_request = _decoder("Request", request["components"], MarketRequest)
        _decoder("ModelConfig", config["components"], ModelConfig)  # checks the names and types
        self._config_order = [str(c["name"]) for c in config["components"]]
        self._config_field = {_abi_name(f): f.name for f in dataclasses.fields(ModelConfig)}

    def encode_config(self, config: ModelConfig) -> tuple[Any, ...]:
        """``config`` as the positional tuple ``registerModel`` takes, by component name."""
        return tuple(getattr(config, self._config_field[n]) for n in self._config_order)


@cache
def market_abi() -> MarketAbi:
    """The structs of the market shipped with the package, checked once."""
    return MarketAbi(load_artifact(MARKET).abi)


class MarketContract:
    """The market at ``address`` read through typed accessors."""

    def __init__(self, client: ChainClient, address: str) -> None:
        self.client = client
        self.address = address
        self.abi = market_abi()
        self.contract: Contract = client.contract(load_artifact(MARKET), address)

    def get_model(self, registration_id: bytes, what: str = "read the model") -> Registration:
        """The registration ``registration_id`` (``exists`` is false when there is none)."""
        raw = self.client.call(self.contract.functions.getModel(bytes(registration_id)), what)
        return self.abi.decode_model(raw)

    def get_request(self, request_id: int) -> MarketRequest:
        """Request ``request_id``'s stored state (status ``NONE`` when there is none)."""
        raw = self.client.call(
            self.contract.functions.getRequest(request_id), f"read request {request_id}"
        )
        return self.abi.decode_request(raw)
