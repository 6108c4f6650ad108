"""``zkinfer deploy``: a bundle's verifier, the market, and the model's registration, once each.

Deployments are recorded per chain id in ``$ZKINFER_HOME/deployments/<chain id>.json``; a recorded
address is reused only while the code at it is still the expected code (a devnet may have been
reset), so a stale record costs a redeploy, never a wrong address.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from prover.chain.abi_types import MARKET, MarketContract, ModelConfig
from prover.chain.client import ChainClient, TxResult
from prover.chain.contracts import Artifact, load_artifact, verifier_artifact
from prover.chain.deployments import Deployments
from prover.chain.slots import market_slots
from prover.core import bundle as b
from prover.core.progress import Progress, StepTimer
from prover.core.srs import CEREMONY
from prover.core.verifier_check import check_verifier_matches_keys
from prover.errors import ArtifactError, ChainError, UsageError

__all__ = [
    "DeployOptions",
    "DeployResult",
    "Deployments",
    "check_registration",
    "deploy_bundle",
    "find_market",
    "layout_hash",
    "model_config",
    "registration_id",
    "resolve_registration",
]

#: InferenceMarket.MIN_LOCK_DURATION and MAX_LOCK_DURATION: a lock lasts a minute to a day.
MIN_LOCK_DURATION_S = 60
MAX_LOCK_DURATION_S = 86_400


@dataclass(frozen=True)
class DeployOptions:
    """Choices for ``deploy``; the stake and lock length apply when the model is registered."""

    market: str | None = None
    allow_unsafe_srs: bool = False
    min_lock_stake_wei: int = 10**16
    lock_duration_s: int = 600

    def __post_init__(self) -> None:
        if not 0 < self.min_lock_stake_wei < 2**96:
            raise UsageError(
                "must be more than zero (and below 2^96 wei)", field="min_lock_stake_wei"
            )
        if not MIN_LOCK_DURATION_S <= self.lock_duration_s <= MAX_LOCK_DURATION_S:
            raise UsageError(
                f"must be between {MIN_LOCK_DURATION_S} and {MAX_LOCK_DURATION_S} seconds "
                "(a minute to a day)",
                field="lock_duration_s",
            )


@dataclass(frozen=True)
class DeployResult:
    """Where the bundle's verifier and the market are, and what it took to get there."""

    chain_id: int
    model_id: str
    registrant: str
    registration_id: str
    verifier: str
    market: str
    srs_provenance: str
    reused: dict[str, bool]
    transactions: dict[str, TxResult] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The result as ``zkinfer deploy --json`` prints it."""
        return {
            "chain_id": self.chain_id,
            "model_id": self.model_id,
            "registrant": self.registrant,
            "registration_id": self.registration_id,
            "verifier": self.verifier,
            "market": self.market,
            "srs_provenance": self.srs_provenance,
            "reused": self.reused,
            "transactions": {k: v.to_json() for k, v in self.transactions.items()},
            "warnings": self.warnings,
        }


def _single_scale(scales: list[int], side: str) -> int:
    if len(set(scales)) != 1:
        raise UsageError(
            f"the model's {side}s have different fixed-point scales {scales}; the market records "
            f"one {side} scale per model: recompile so that all {side}s share one scale"
        )
    return int(scales[0])


def model_config(bundle: b.Bundle, verifier: str, options: DeployOptions) -> ModelConfig:
    """The ``InferenceMarket.ModelConfig`` for ``bundle`` served by ``verifier`` (``as_abi()`` is
    what ``registerModel`` takes).

    A bundle with market slots (:func:`~prover.chain.slots.market_slots`) is registered with one
    slot per batch row, the counts those of one slot; any other with one slot covering every
    input and output instance."""
    m = bundle.manifest
    layout = m.instances
    if layout.output.visibility != "public":
        raise UsageError(
            "the market hands proven outputs to consumers, but this bundle hashes its outputs",
            hint="recompile with {output_visibility} public to use it on chain",
        )
    # (input offset, input count, output offset, output count) of slot 0, and the slot count
    runs = (layout.input.offset, layout.input.count, layout.output.offset, layout.output.count)
    count = 1
    slots = market_slots(m)
    if slots is not None and slots.output is not None:  # outputs are public: always so here
        first_in, first_out = slots.input[0][0], slots.output[0][0]
        runs = (
            first_in.offset, slots.per_slot_input_count,
            first_out.offset, slots.per_slot_output_count,
        )  # fmt: skip
        count = slots.count
    return ModelConfig(
        verifier=verifier,
        vk_digest=bytes.fromhex(m.files[b.VK]),
        settings_digest=bytes.fromhex(m.files[b.SETTINGS]),
        instance_count=layout.total,
        input_offset=runs[0],
        input_count=runs[1],
        output_offset=runs[2],
        output_count=runs[3],
        batch_size=count,
        input_scale=_single_scale(list(m.circuit.input_scales), "input"),
        output_scale=_single_scale(list(m.circuit.output_scales), "output"),
        min_lock_stake=options.min_lock_stake_wei,
        lock_duration=options.lock_duration_s,
    )


def layout_hash(bundle: b.Bundle) -> bytes:
    """``InferenceMarket.layoutHashOf`` for the bundle's model: what a consumer contract pins
    besides the verifier, so that a registration with another instance layout is refused."""
    fields = model_config(bundle, "0x" + "00" * 20, DeployOptions()).layout()
    return keccak(abi_encode(["uint32"] * 6 + ["uint8"] * 2, list(fields)))


def registration_id(registrant: str, model_id: str) -> bytes:
    """``InferenceMarket.registrationIdOf(registrant, modelId)``: the market keys a registration by
    who registered it, so that nobody can take a model id from its owner."""
    return keccak(abi_encode(["address", "bytes32"], [registrant, bytes.fromhex(model_id)]))


def resolve_registration(client: ChainClient, bundle: b.Bundle, registrant: str | None) -> bytes:
    """The registration of the bundle's model to use: by ``registrant``, or by the account that
    ``zkinfer deploy`` registered it with on this chain (recorded in the data directory)."""
    from web3 import Web3

    if registrant is None:
        registrant = Deployments(client.chain_id).get("registrants", bundle.model_id)
        if registrant is None:
            raise UsageError(
                f"no registration of model {bundle.model_id[:16]}… is recorded for chain "
                f"{client.chain_id}",
                hint="pass {registrant} ADDRESS (the account that registered it, whose lock terms "
                "and pausing you trust), or run `zkinfer deploy` with its bundle",
            )
    if not Web3.is_address(registrant):
        raise UsageError(
            f"{registrant!r} is not an address (0x and 40 hex digits)", field="registrant"
        )
    return registration_id(Web3.to_checksum_address(registrant), bundle.model_id)


def _has_code(client: ChainClient, address: str | None, artifact: Artifact) -> bool:
    return address is not None and client.code_hash(address) == artifact.runtime_code_hash


def find_market(client: ChainClient, explicit: str | None = None) -> str:
    """The market to use: ``explicit`` (checked to be this build's market) or the recorded one."""
    artifact = load_artifact(MARKET)
    if explicit is not None:
        if not _has_code(client, explicit, artifact):
            raise ChainError(
                f"{explicit}: no InferenceMarket of this zkinfer version is deployed there on "
                f"chain {client.chain_id}",
                field="market",
            )
        return explicit
    recorded = Deployments(client.chain_id).get("market")
    if recorded is None or not _has_code(client, recorded, artifact):
        raise ChainError(
            f"no InferenceMarket is known on chain {client.chain_id}",
            hint="run `zkinfer deploy BUNDLE` first or pass {market} ADDRESS",
        )
    return recorded


def check_registration(
    client: ChainClient, market: str, bundle: b.Bundle, registration: bytes
) -> str:
    """The verifier address of ``registration``, after checking that it registers this bundle:
    model id, verifier code, key and settings digests, layout and scales.

    Anyone can register any model id (under a registration id of their own) with any verifier, so
    whoever pays for or acts on a result must check the registration first.
    """
    model = MarketContract(client, market).get_model(registration, "read model")
    if not model.exists:
        raise ChainError(
            f"registration 0x{registration.hex()[:16]}… of model {bundle.model_id[:16]}… does "
            f"not exist on market {market}",
            hint="run `zkinfer deploy` with its bundle first, or check {registrant}",
        )
    artifact = verifier_artifact(bundle.path(b.VERIFIER_JSON))
    config = model.config
    expected = model_config(bundle, config.verifier, DeployOptions())
    problems = []
    if model.model_id.hex() != bundle.model_id:
        problems.append("it registers another model id")
    if model.verifier_code_hash != artifact.runtime_code_hash:
        problems.append("its verifier's code is not this bundle's verifier")
    # the verifier is checked by its code hash above and the lock terms are the registrant's
    # choice, reported by deploy and capped by the worker
    problems += [
        f"{name.replace('_', ' ')} differs"
        for name in ModelConfig.BUNDLE_FIELDS
        if getattr(config, name) != getattr(expected, name)
    ]
    if problems:
        raise ArtifactError(
            f"registration 0x{registration.hex()[:16]}… on market {market} (registrant "
            f"{model.registrant}) is not this bundle: {'; '.join(problems)}. Do not pay for or "
            "act on its results",
            hint="use another {registrant}, another market ({market}) or the bundle it was "
            "registered from",
        )
    return config.verifier


def _check_srs_policy(bundle: b.Bundle, client: ChainClient, options: DeployOptions) -> list[str]:
    if bundle.srs_provenance == CEREMONY:
        return []
    if client.is_local_devnet:
        return ["the bundle uses a development SRS (dev-unsafe): fine on a devnet, never elsewhere"]
    if not options.allow_unsafe_srs:
        raise UsageError(
            f"refusing to deploy to chain {client.chain_id}: the bundle was compiled with a "
            "development SRS (dev-unsafe), whose creator can forge proofs",
            hint="compile with a ceremony SRS (`zkinfer srs import`), or pass "
            "{allow_unsafe_srs} for a throwaway test network",
        )
    return [f"deployed a dev-unsafe bundle to chain {client.chain_id} (unsafe SRS allowed)"]


def deploy_bundle(
    client: ChainClient,
    bundle_dir: Path,
    options: DeployOptions | None = None,
    progress: Progress | None = None,
) -> DeployResult:
    """Deploy (or reuse) the bundle's verifier and the market, and register the model."""
    options = options or DeployOptions()
    timer = StepTimer(progress)
    with timer.step("check bundle"):
        bundle = b.load_bundle(Path(bundle_dir), check=b.CHAIN_FILES)
        check_verifier_matches_keys(bundle)  # the contract deployed is the one for these keys
    warnings = _check_srs_policy(bundle, client, options)
    verifier_art = verifier_artifact(bundle.path(b.VERIFIER_JSON))
    market_art = load_artifact(MARKET)
    record = Deployments(client.chain_id)
    txs: dict[str, TxResult] = {}
    reused = {"verifier": True, "market": True, "registration": True}

    recorded = record.get("market")
    if options.market is not None:
        market = find_market(client, options.market)
    elif recorded is not None and _has_code(client, recorded, market_art):
        market = recorded
    else:
        with timer.step("deploy market"):
            txs["deploy_market"] = client.deploy(market_art, "deploy InferenceMarket")
        market = str(txs["deploy_market"].contract_address)
        reused["market"] = False
    record.put("market", market)
    reader = MarketContract(client, market)
    contract = reader.contract
    registrant = str(client.address)
    registration = registration_id(registrant, bundle.model_id)
    result = functools.partial(
        DeployResult, client.chain_id, bundle.model_id, registrant, "0x" + registration.hex()
    )

    registered = reader.get_model(registration)
    if registered.exists:
        verifier = check_registration(client, market, bundle, registration)
        terms = (registered.config.min_lock_stake, registered.config.lock_duration)
        if terms != (options.min_lock_stake_wei, options.lock_duration_s):
            warnings.append(
                f"the registration keeps its lock terms: stake {terms[0]} wei, {terms[1]} s "
                "(the lock stake and duration asked for apply only to a new registration)"
            )
        record.put("verifiers", verifier, bundle.model_id)
        record.put("registrants", registrant, bundle.model_id)
        return result(verifier, market, bundle.srs_provenance, reused, txs, warnings)

    verifier_addr = record.get("verifiers", bundle.model_id)
    if _has_code(client, verifier_addr, verifier_art):
        verifier = str(verifier_addr)
    else:
        with timer.step("deploy verifier", f"{len(verifier_art.deployed_bytecode) // 2 - 1} B"):
            txs["deploy_verifier"] = client.deploy(verifier_art, "deploy verifier")
        verifier = str(txs["deploy_verifier"].contract_address)
        record.put("verifiers", verifier, bundle.model_id)
        reused["verifier"] = False
    config = model_config(bundle, verifier, options)
    with timer.step("register model"):
        txs["register_model"] = client.transact(
            contract.functions.registerModel(bytes.fromhex(bundle.model_id), config.as_abi()),
            "register model",
        )
    record.put("registrants", registrant, bundle.model_id)
    reused["registration"] = False
    return result(verifier, market, bundle.srs_provenance, reused, txs, warnings)
