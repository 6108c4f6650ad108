"""Measure the gas of deploy, register, request and fulfil per reference model on a fresh anvil.

    .venv/bin/python scripts/gas_report.py [--out docs/onchain.md] [--workdir .zkinfer/gas]

Each model is compiled (dev SRS; reused when the bundle exists), its sample proved, then deployed
to a new anvil node and served once through the market. The table replaces the text between
``<!-- gas:start -->`` and ``<!-- gas:end -->`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eth_account import Account

from prover.chain.client import ChainClient
from prover.chain.contracts import load_artifact
from prover.chain.deploy import deploy_bundle
from prover.chain.devnet import temporary_anvil
from prover.chain.keys import DEVNET_KEYS
from prover.chain.market import fulfill_request, request_inference
from prover.core.compile import CompileOptions, compile_model
from prover.core.prove import prove

REPO = Path(__file__).resolve().parents[1]
TX_CAP = 16_777_216


def measure(model: Path, workdir: Path) -> dict[str, Any]:
    """Compile (or reuse), prove, deploy and settle one request for ``model``; return gas used."""
    bundle, proof = workdir / model.name / "bundle", workdir / model.name / "proof.json"
    calibration = model / "calibration.json"
    compile_model(
        model / "network.onnx",
        model / "input.json",
        bundle,
        calibration=calibration if calibration.is_file() else None,
        options=CompileOptions(dev_srs=True),
    )
    if not proof.is_file():
        prove(bundle, model / "input.json", proof)
    with temporary_anvil() as url:
        known = [load_artifact("InferenceMarket"), load_artifact("ScreeningConsumer")]
        owner, provider = (
            ChainClient.connect(url, signer=Account.from_key(k), known_errors=known)
            for k in DEVNET_KEYS[:2]
        )
        deployed = deploy_bundle(owner, bundle)
        req = request_inference(
            owner, deployed.market, bundle, model / "input.json", reward_wei=10**16
        )
        done = fulfill_request(provider, deployed.market, bundle, req.request_id, proof)
    txs = deployed.transactions
    return {
        "model": model.name,
        "deploy_market": txs["deploy_market"].gas_used,
        "deploy_verifier": txs["deploy_verifier"].gas_used,
        "register_model": txs["register_model"].gas_used,
        "request": req.tx.gas_used,
        "fulfill": done.tx.gas_used,
        "instances": json.loads((bundle / "manifest.json").read_text())["instances"]["total"],
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """The gas table."""
    lines = [
        "| model | public instances | deploy verifier | register model | request | "
        "fulfil (verify + settle) | fulfil / 16,777,216 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['instances']} | {r['deploy_verifier']:,} | "
            f"{r['register_model']:,} | {r['request']:,} | {r['fulfill']:,} | "
            f"{r['fulfill'] / TX_CAP:.1%} |"
        )
    lines.append("")
    lines.append(f"Market deployment: {rows[0]['deploy_market']:,} gas (once per chain).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "onchain.md")
    parser.add_argument("--workdir", type=Path, default=REPO / ".zkinfer" / "gas")
    parser.add_argument("--model", type=Path, action="append")
    args = parser.parse_args()
    models = args.model or sorted(p.parent for p in (REPO / "models").glob("*/network.onnx"))
    rows = [measure(m, args.workdir) for m in models]
    table = markdown(rows)
    print(table)
    text = args.out.read_text()
    start, end = "<!-- gas:start -->", "<!-- gas:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        args.out.write_text(f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
