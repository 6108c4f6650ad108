"""Gas per settled inference on a fresh anvil with the real verifier: ``fulfill`` of one request
against ``fulfillBatch`` of N requests settled by one proof of a batch-N bundle.

Gas is the transaction's ``gasUsed``, so the calldata (proof and every public instance) is
included, as are the verifier call, the input checks, the stored outputs and the rewards. The
largest N whose ``fulfillBatch`` stays under the per-transaction cap of 16,777,216 gas is
extrapolated from a straight line through the measured batches (the cost per slot is constant:
calldata, one commitment check and one stored result per request) and reported as such.

The measurement runs in its own process (``python -m prover.bench.gas``) with ``ZKINFER_HOME``
in the bench's scratch folder, so the addresses recorded by ``deploy`` never touch the user's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prover.bench.runner import measure

__all__ = [
    "TX_GAS_CAP",
    "GasReport",
    "GasRow",
    "largest_batch_under_cap",
    "market_settles_batches",
    "measure_gas",
]

TX_GAS_CAP = 16_777_216  # EIP-7825's per-transaction cap; DESIGN's invariant 8
_NO_BATCH = (
    "the InferenceMarket of this build has no fulfillBatch (it comes with the on-chain "
    "batching work)"
)


@dataclass(frozen=True)
class GasRow:
    """One settlement: ``requests`` requests settled by one transaction."""

    method: str
    requests: int
    gas: int
    gas_per_inference: int
    calldata_bytes: int


@dataclass(frozen=True)
class GasReport:
    """Measured rows; the extrapolated batch limit; why fulfillBatch was not measured, if not."""

    rows: tuple[GasRow, ...]
    largest_batch_under_cap: int | None
    not_measured: str | None


def measure_gas(bundles: dict[int, tuple[Path, Path]], work: Path) -> GasReport:
    """Settle on anvil with each bundle ({batch: (bundle, sample of that many rows)}; batch 1
    is required: its ``fulfill`` is the baseline)."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    spec = json.dumps({str(n): [str(b), str(s)] for n, (b, s) in bundles.items()})
    ran = measure(
        [sys.executable, "-m", "prover.bench.gas", spec, str(work)],
        env={**os.environ, "ZKINFER_HOME": str(home)},
    )
    doc = json.loads(ran.stdout.strip().splitlines()[-1])
    return GasReport(
        rows=tuple(GasRow(**r) for r in doc["rows"]),
        largest_batch_under_cap=doc["largest_batch_under_cap"],
        not_measured=doc["not_measured"],
    )


def market_settles_batches() -> bool:
    """Whether this build's InferenceMarket has ``fulfillBatch`` (else only ``fulfill`` is
    measured, and the batch bundles are not compiled for nothing)."""
    from prover.chain.abi_types import MARKET
    from prover.chain.contracts import load_artifact

    return any(e.get("name") == "fulfillBatch" for e in load_artifact(MARKET).abi)


def largest_batch_under_cap(rows: list[GasRow]) -> int | None:
    """Largest N under the cap from a least-squares line through the fulfillBatch points."""
    points = [(r.requests, r.gas) for r in rows if r.method == "fulfillBatch"]
    if len({n for n, _ in points}) < 2:
        return None
    mean_n = sum(n for n, _ in points) / len(points)
    mean_g = sum(g for _, g in points) / len(points)
    slope = sum((n - mean_n) * (g - mean_g) for n, g in points) / sum(
        (n - mean_n) ** 2 for n, _ in points
    )
    if slope <= 0:
        return None
    return int((TX_GAS_CAP - (mean_g - slope * mean_n)) // slope)


def _row(method: str, requests: int, gas: int, calldata: int) -> GasRow:
    return GasRow(method, requests, gas, round(gas / requests), calldata)


def _calldata_len(client: Any, tx_hash: str) -> int:
    """Bytes of the transaction's input (selector and ABI-encoded arguments)."""
    return len(bytes(client.w3.eth.get_transaction(tx_hash)["input"]))


def _register_slots(owner: Any, market: str, root: Path, n: int) -> bytes:
    """Deploy the batch bundle's verifier and register it with N slots (per-slot counts), as
    docs/onchain.md describes a slotted registration; the registration id."""
    from dataclasses import replace

    from prover.chain.abi_types import MARKET
    from prover.chain.contracts import load_artifact, verifier_artifact
    from prover.chain.deploy import DeployOptions, model_config, registration_id
    from prover.core import bundle as b

    bundle = b.load_bundle(root)
    layout = bundle.manifest.instances
    if layout.input.count % n or layout.output.count % n:
        raise ValueError(f"instance counts {layout.to_json()} are not per-slot multiples of {n}")
    deployed = owner.deploy(verifier_artifact(bundle.path(b.VERIFIER_JSON)), "deploy verifier")
    config = replace(
        model_config(bundle, str(deployed.contract_address), DeployOptions()),
        batch_size=n,
        input_count=layout.input.count // n,
        output_count=layout.output.count // n,
    )
    contract = owner.contract(load_artifact(MARKET), market)
    owner.transact(
        contract.functions.registerModel(bytes.fromhex(bundle.model_id), config.as_abi()),
        "register model",
    )
    return registration_id(str(owner.address), bundle.model_id)


def _settle_batch(
    owner: Any, provider: Any, market: str, root: Path, proof: Path, n: int
) -> GasRow:
    """N requests, each committing to its own slot's input instances, settled by one
    ``fulfillBatch`` with the batch's proof."""
    from eth_abi.abi import encode as abi_encode

    from prover.chain.abi_types import MARKET
    from prover.chain.client import ZERO_ADDRESS
    from prover.chain.contracts import load_artifact
    from prover.chain.market import input_commitment
    from prover.core.bundle import load_bundle
    from prover.core.fields import felt_from_hex, felt_to_signed
    from prover.core.proofs import parse_proof, read_proof_file

    registration = _register_slots(owner, market, root, n)
    m = load_bundle(root).manifest
    parsed = parse_proof(
        read_proof_file(proof), expected_instances=m.instances.total, expected_bytes=m.proof_bytes
    )
    instances = [felt_from_hex(h) for h in parsed.instances]
    per_slot = m.instances.input.count // n
    requester = owner.contract(load_artifact(MARKET), market)
    ids = []
    for s in range(n):
        start = m.instances.input.offset + s * per_slot
        slot = instances[start : start + per_slot]
        data = abi_encode(["int256[][]"], [[[felt_to_signed(v) for v in slot]]])
        fn = requester.functions.requestInference(
            registration, input_commitment(slot), data, owner.now() + 3600, ZERO_ADDRESS
        )
        tx = owner.transact(fn, f"request slot {s}", value=10**16)
        ids.append(_request_id(requester, tx))
    contract = provider.contract(load_artifact(MARKET), market)
    fn = contract.functions.fulfillBatch(ids, list(range(n)), bytes(parsed.proof), instances)
    tx = provider.transact(fn, f"fulfillBatch of {n}")
    return _row("fulfillBatch", n, tx.gas_used, _calldata_len(provider, tx.tx_hash))


def _request_id(contract: Any, tx: Any) -> int:
    from prover.chain.client import events_of

    return int(events_of(contract, "InferenceRequested", tx)[0]["args"]["requestId"])


def _settle(spec: dict[int, tuple[Path, Path]], work: Path) -> dict[str, Any]:
    """The child's job: deploy, request, prove and settle; the figures as JSON."""
    from eth_account import Account

    from prover.chain.abi_types import MARKET
    from prover.chain.client import ChainClient
    from prover.chain.contracts import load_artifact
    from prover.chain.deploy import deploy_bundle
    from prover.chain.devnet import temporary_anvil
    from prover.chain.keys import DEVNET_KEYS
    from prover.chain.market import fulfill_request, request_inference
    from prover.core.prove import prove

    market_art = load_artifact(MARKET)
    rows: list[GasRow] = []
    not_measured = None if market_settles_batches() else _NO_BATCH
    with temporary_anvil() as url:
        owner, provider = (
            ChainClient.connect(url, signer=Account.from_key(k), known_errors=[market_art])
            for k in DEVNET_KEYS[:2]
        )
        root, sample = spec[1]
        deployed = deploy_bundle(owner, root)  # the market, and the batch-1 registration
        market, proof = deployed.market, work / "gas-proof-1.json"
        prove(root, sample, proof)
        req = request_inference(owner, market, root, sample, reward_wei=10**16)
        done = fulfill_request(provider, market, root, req.request_id, proof)
        rows.append(_row("fulfill", 1, done.tx.gas_used, _calldata_len(provider, done.tx.tx_hash)))
        for n, (root, sample) in sorted(spec.items()):
            if n == 1 or not_measured:
                continue
            proof = work / f"gas-proof-{n}.json"
            try:
                prove(root, sample, proof)
                rows.append(_settle_batch(owner, provider, market, root, proof, n))
            except Exception as exc:  # reported as not measured, never as a number
                not_measured = f"fulfillBatch of {n} failed: {type(exc).__name__}: {exc}"[:500]
    return {
        "rows": [asdict(r) for r in rows],
        "largest_batch_under_cap": largest_batch_under_cap(rows),
        "not_measured": not_measured,
    }


def main() -> int:
    """``python -m prover.bench.gas SPEC WORK``: SPEC maps batch sizes to [bundle, sample]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("work", type=Path)
    args = parser.parse_args()
    spec = {int(n): (Path(r), Path(s)) for n, (r, s) in json.loads(args.spec).items()}
    print(json.dumps(_settle(spec, args.work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
