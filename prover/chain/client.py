"""A small Ethereum client over web3.py: one RPC, one expected chain, one optional signer.

It owns what every on-chain command needs and nothing model-specific: connecting with retries and
a clear error, checking the chain id, EIP-1559 fees, signing locally (the key never leaves the
process and is never printed), waiting for receipts, and naming a contract's custom error when a
call or transaction reverts.

It is also the one place where web3's and requests' exceptions become the project's errors
(:meth:`ChainClient.rpc`): every RPC operation of the chain layer goes through it, so nothing
outside this module catches a web3 exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from requests.exceptions import RequestException
from web3 import HTTPProvider, Web3
from web3.contract.contract import Contract, ContractFunction
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3RPCError,
)
from web3.logs import DISCARD
from web3.types import TxParams, Wei

from prover.chain.contracts import Artifact, error_selectors
from prover.errors import (
    ChainError,
    RpcUnavailable,
    SignerError,
    TransactionReverted,
    WrongChainError,
)

__all__ = [
    "LOCAL_DEVNET_CHAIN_IDS",
    "ZERO_ADDRESS",
    "ChainClient",
    "TxResult",
    "events_of",
    "redact_url",
]

#: Chain ids of local development chains (anvil, hardhat, geth --dev): the only chains on which a
#: bundle with a development SRS may be deployed without an explicit unsafe flag.
LOCAL_DEVNET_CHAIN_IDS = frozenset({31337, 1337})

#: The zero address: "no consumer" in a request, "not locked" in a lock.
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

_T = TypeVar("_T")
_GAS_HEADROOM = 1.2
_RECEIPT_TIMEOUT_S = 180.0

# requests is web3's HTTP transport: a dead RPC, a timeout, HTTP 429 or 5xx raise its exceptions,
# which are retried and then reported without the URL (it may hold an API key).
_TRANSIENT: tuple[type[BaseException], ...] = (
    RequestException,
    ProviderConnectionError,
    ConnectionError,
)


def redact_url(url: str) -> str:
    """The RPC URL without path, query or credentials (hosted RPC URLs often embed an API key)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


@dataclass(frozen=True)
class TxResult:
    """A mined transaction: what it was for, its hash, the gas it used and its receipt."""

    label: str
    tx_hash: str
    gas_used: int
    block: int
    contract_address: str | None = None
    receipt: Any = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The transaction as the CLI prints it."""
        out: dict[str, Any] = {"tx": self.tx_hash, "gas_used": self.gas_used, "block": self.block}
        if self.contract_address:
            out["address"] = self.contract_address
        return out


def events_of(contract: Contract, name: str, tx: TxResult) -> list[Any]:
    """The ``name`` events that ``contract`` emitted in the mined transaction ``tx``, decoded."""
    return list(getattr(contract.events, name)().process_receipt(tx.receipt, errors=DISCARD))


class ChainClient:
    """One connection to one chain; ``signer`` is needed only for transactions."""

    def __init__(
        self,
        w3: Web3,
        rpc_url: str,
        chain_id: int,
        signer: LocalAccount | None = None,
        *,
        retries: int = 4,
        known_errors: Iterable[Artifact] = (),
    ) -> None:
        self.w3 = w3
        self.rpc_url = rpc_url
        self.chain_id = chain_id
        self.signer = signer
        self.retries = retries
        self._errors: dict[bytes, str] = {}
        for artifact in known_errors:
            self._errors.update(error_selectors(artifact.abi))

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        *,
        expected_chain_id: int | None = None,
        signer: LocalAccount | None = None,
        timeout_s: float = 15.0,
        retries: int = 4,
        known_errors: Iterable[Artifact] = (),
    ) -> ChainClient:
        """Connect and check the chain id; :class:`ChainError` if the RPC cannot be reached."""
        if not rpc_url.startswith(("http://", "https://")):
            raise ChainError(f"RPC URL {redact_url(rpc_url)}: only http(s):// URLs are supported")
        w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        probe = cls(w3, rpc_url, 0, signer, retries=retries, known_errors=known_errors)
        chain_id = probe.rpc("read the chain id", lambda: int(w3.eth.chain_id))
        if expected_chain_id is not None and chain_id != expected_chain_id:
            raise WrongChainError(
                f"the RPC at {redact_url(rpc_url)} serves chain id {chain_id}, "
                f"not the expected {expected_chain_id}",
                hint="check {rpc_url} or {chain_id}",
            )
        probe.chain_id = chain_id
        return probe

    @property
    def is_local_devnet(self) -> bool:
        """Whether the chain id is a local development chain's."""
        return self.chain_id in LOCAL_DEVNET_CHAIN_IDS

    @property
    def address(self) -> ChecksumAddress:
        """The signer's address; :class:`ChainError` when no signer is configured."""
        if self.signer is None:
            raise SignerError(
                "this command sends a transaction and needs a key",
                hint="set ZKINFER_PRIVATE_KEY or pass {keystore} FILE (with "
                "ZKINFER_KEYSTORE_PASSWORD)",
            )
        return self.signer.address

    def rpc(self, what: str, op: Callable[[], _T]) -> _T:
        """Run one RPC operation, retrying transient connection errors with backoff, and map
        web3's exceptions to the project's errors, here and nowhere else:

        - unreachable or failing transport, after the retries: :class:`RpcUnavailable`;
        - a revert: :class:`TransactionReverted` naming the contract's custom error when the ABI
          knows it (``error_name``), a panic, or the node's reason;
        - a call whose contract returned nothing decodable (no code, a short or empty return):
          :class:`TransactionReverted` without an error name: the contract gave no answer;
        - an error answer of the RPC (rate limit, refused request, node error): :class:`ChainError`.
        """
        try:
            return self._retrying(what, op)
        except ContractLogicError as exc:
            raise self._reverted(what, exc) from None
        except BadFunctionCallOutput as exc:
            raise TransactionReverted(
                f"{what}: the contract returned no valid answer ({_message(exc)[:120]})"
            ) from None
        except TimeExhausted:
            raise ChainError(f"{what}: timed out waiting for the chain") from None
        except Web3RPCError as exc:
            raise ChainError(f"{what}: the RPC answered with an error: {_message(exc)}") from None

    def _retrying(self, what: str, op: Callable[[], _T]) -> _T:
        """``op`` with transient connection errors retried; :class:`RpcUnavailable` at the end.
        Other web3 exceptions pass through: callers inside this module handle them."""
        delay = 0.25
        for attempt in range(self.retries + 1):
            try:
                return op()
            except _TRANSIENT as exc:
                if attempt == self.retries:
                    raise RpcUnavailable(
                        f"cannot {what}: the RPC at {redact_url(self.rpc_url)} is unreachable "
                        f"or failing ({type(exc).__name__}) after {self.retries + 1} tries",
                        hint="check {rpc_url} or start a local chain with `zkinfer devnet start`",
                    ) from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def now(self) -> int:
        """The timestamp of the latest block: the clock deadlines and locks are measured by."""
        block = self.rpc("read the latest block", lambda: self.w3.eth.get_block("latest"))
        return int(block["timestamp"])

    def contract(self, artifact: Artifact, address: str) -> Contract:
        """A contract object for ``artifact`` at ``address``."""
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)

    def code_hash(self, address: str) -> bytes:
        """keccak256 of the runtime code at ``address`` (of b"" when there is no code)."""
        addr = Web3.to_checksum_address(address)
        return keccak(bytes(self.rpc("read contract code", lambda: self.w3.eth.get_code(addr))))

    def call(self, fn: ContractFunction, what: str) -> Any:
        """``eth_call`` a view function; errors as :meth:`rpc` maps them."""
        return self.rpc(what, fn.call)

    def transact(self, fn: ContractFunction, label: str, *, value: int = 0) -> TxResult:
        """Sign and send a contract call, wait for it, and fail if it reverted."""
        params: TxParams = {"from": self.address, "value": Wei(value), "gas": 1}  # no estimate yet
        tx = self.rpc(f"prepare {label}", lambda: fn.build_transaction(params))
        tx.pop("gas", None)
        return self._send(dict(tx), label)

    def deploy(self, artifact: Artifact, label: str, *args: Any) -> TxResult:
        """Deploy ``artifact`` with constructor ``args``; the result carries the new address."""
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        params: TxParams = {"from": self.address, "gas": 1}
        tx = self.rpc(
            f"prepare {label}", lambda: factory.constructor(*args).build_transaction(params)
        )
        tx.pop("gas", None)
        result = self._send(dict(tx), label)
        if not result.contract_address:
            raise ChainError(f"{label}: the receipt names no contract address")
        return result

    def _fees(self) -> dict[str, int]:
        block = self.rpc("read the latest block", lambda: self.w3.eth.get_block("latest"))
        base = block.get("baseFeePerGas")
        if base is None:  # a chain without EIP-1559
            return {"gasPrice": int(self.rpc("read the gas price", lambda: self.w3.eth.gas_price))}
        tip = int(self.rpc("read the priority fee", lambda: self.w3.eth.max_priority_fee))
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

    def _send(self, tx: dict[str, Any], label: str) -> TxResult:
        signer = self.signer
        if signer is None:
            self.address  # raises the SignerError  # noqa: B018
            raise AssertionError("unreachable")  # pragma: no cover
        tx.update(self._fees())
        tx["chainId"] = self.chain_id
        tx["nonce"] = self.rpc(
            "read the account nonce",
            lambda: self.w3.eth.get_transaction_count(signer.address, "pending"),
        )
        try:
            estimate = self._retrying(
                f"estimate gas for {label}",
                lambda: self.w3.eth.estimate_gas(tx),  # type: ignore[arg-type]
            )
        except ContractLogicError as exc:
            raise self._reverted(label, exc) from None
        except Web3RPCError as exc:  # e.g. insufficient funds: not the contract's verdict
            raise ChainError(f"{label}: the RPC refused to estimate it: {_message(exc)}") from None
        tx["gas"] = int(estimate * _GAS_HEADROOM)
        raw = signer.sign_transaction(tx).raw_transaction
        tx_hash = Web3.keccak(raw)
        try:
            self._retrying(f"send {label}", lambda: self.w3.eth.send_raw_transaction(raw))
        except Web3RPCError as exc:
            # A send retried after a lost answer is refused ("already known", "nonce too low")
            # although the first one went through: the same signed bytes, so look the hash up.
            if not self._known(tx_hash):
                raise ChainError(
                    f"{label}: the RPC refused the transaction: {_message(exc)}"
                ) from None
        try:
            receipt = self._retrying(
                f"wait for {label}",
                lambda: self.w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=_RECEIPT_TIMEOUT_S, poll_latency=0.1
                ),
            )
        except TimeExhausted:
            raise ChainError(
                f"{label}: transaction {tx_hash.to_0x_hex()} was not mined within "
                f"{_RECEIPT_TIMEOUT_S:.0f} s; check the chain and the fee settings"
            ) from None
        if receipt["status"] != 1:
            raise TransactionReverted(
                f"{label}: transaction {tx_hash.to_0x_hex()} reverted on chain", error_name=None
            )
        address = receipt.get("contractAddress")
        return TxResult(
            label=label,
            tx_hash=tx_hash.to_0x_hex(),
            gas_used=int(receipt["gasUsed"]),
            block=int(receipt["blockNumber"]),
            contract_address=str(address) if address else None,
            receipt=receipt,
        )

    def _known(self, tx_hash: HexBytes) -> bool:
        try:
            self._retrying("look up the transaction", lambda: self.w3.eth.get_transaction(tx_hash))
        except Web3RPCError:  # TransactionNotFound
            return False
        return True

    def _reverted(self, what: str, exc: Exception) -> TransactionReverted:
        """Name the custom error in a revert when the ABI knows it."""
        data = getattr(exc, "data", None)
        if isinstance(exc, ContractPanicError):
            return TransactionReverted(f"{what}: reverted with a panic ({exc})")
        if isinstance(exc, ContractCustomError) or isinstance(data, str):
            raw = bytes.fromhex(str(data)[2:]) if isinstance(data, str) else b""
            name = self._errors.get(raw[:4])
            if name:
                return TransactionReverted(f"{what}: reverted with {name}", error_name=name)
        return TransactionReverted(f"{what}: reverted ({_message(exc)})")


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)[:300]
