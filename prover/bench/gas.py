"""Gas per settled inference on a fresh anvil with the real verifier: ``fulfill`` of one request
against ``fulfillBatch`` of N requests settled by one proof of a batch-N bundle.

Gas is the transaction's ``gasUsed``, so the calldata (proof and every public instance) is
included, as are the verifier call, the input checks, the stored outputs and the rewards. The
largest N whose ``fulfillBatch`` stays under the per-transaction cap of 16,777,216 gas is
extrapolated from a straight line through the measured batches (the cost per slot is constant:
calldata, one commitment check and one stored result per request) and reported as such.

compile keeps verifiers under EIP-170's 24,576-byte limit on deployed code by default (batch
circuits are laid out without Freivalds' argument); the anvil here lifts that limit all the same,
so that bundles compiled with ``--verifier-limit 0`` can be measured, and each row gives the
verifier's runtime size so that the report can say which would not deploy on a public chain.

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
    verifier_bytes: int


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


def _row(method: str, requests: int, gas: int, calldata: int, root: Path) -> GasRow:
    from prover.core.bundle import load_bundle

    size = load_bundle(root).manifest.verifier.runtime_size
    return GasRow(method, requests, gas, round(gas / requests), calldata, size)


def _calldata_len(client: Any, tx_hash: str) -> int:
    """Bytes of the transaction's input (selector and ABI-encoded arguments)."""
    return len(bytes(client.w3.eth.get_transaction(tx_hash)["input"]))


def _slot_files(sample: Path, n: int, folder: Path) -> list[Path]:
    """One input file per slot: row s of the batch sample, the input a request commits to."""
    flat: list[float] = json.loads(sample.read_text())["input_data"][0]
    width = len(flat) // n
    paths = []
    for s in range(n):
        path = folder / f"slot-{n}-{s}.json"
        path.write_text(json.dumps({"input_data": [flat[s * width : (s + 1) * width]]}))
        paths.append(path)
    return paths


def _settle_batch(
    owner: Any, provider: Any, root: Path, sample: Path, proof: Path, n: int
) -> GasRow:
    """The batch bundle registered with N slots, N requests (one slot's input each), settled by
    one ``fulfillBatch`` with the proof of the whole batch."""
    from prover.chain.deploy import deploy_bundle
    from prover.chain.market import request_inference
    from prover.chain.market_batch import fulfill_batch

    market = deploy_bundle(owner, root).market
    ids = [
        request_inference(owner, market, root, path, reward_wei=10**16).request_id
        for path in _slot_files(sample, n, proof.parent)
    ]
    done = fulfill_batch(provider, market, root, ids, list(range(n)), proof)
    calldata = _calldata_len(provider, done.tx.tx_hash)
    return _row("fulfillBatch", n, done.tx.gas_used, calldata, root)


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
    # a verifier over EIP-170's 24,576 bytes (--verifier-limit 0) is measured all the same;
    # the report says which
    with temporary_anvil(unlimited_code_size=True) as url:
        owner, provider = (
            ChainClient.connect(url, signer=Account.from_key(k), known_errors=[market_art])
            for k in DEVNET_KEYS[:2]
        )
        root, sample = spec[1]
        deployed = deploy_bundle(owner, root)  # the market, and the batch-1 registration
        market, proof = deployed.market, work / "gas-proof-1.json"  # one market for all
        prove(root, sample, proof)
        req = request_inference(owner, market, root, sample, reward_wei=10**16)
        done = fulfill_request(provider, market, root, req.request_id, proof)
        calldata = _calldata_len(provider, done.tx.tx_hash)
        rows.append(_row("fulfill", 1, done.tx.gas_used, calldata, root))
        for n, (root, sample) in sorted(spec.items()):
            if n == 1 or not_measured:
                continue
            proof = work / f"gas-proof-{n}.json"
            try:
                prove(root, sample, proof)
                rows.append(_settle_batch(owner, provider, root, sample, proof, n))
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
