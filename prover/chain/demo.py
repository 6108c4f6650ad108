"""The on-chain half of the demo: a dApp pays for a proven inference and acts on the result.

On the local devnet: the model owner deploys the bundle's verifier and the market and registers
the model; a clinic's ``ScreeningConsumer`` contract requests a screening of the sample, escrowing
the reward; a provider locks the request, proves it and fulfils it; the market checks the proof
with the pinned verifier, pays the provider and calls the consumer back, which refers the case
for review or not on the proven logits. The provider then withdraws its earnings.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prover.chain.client import ChainClient, TxResult, events_of
from prover.chain.contracts import load_artifact, verifier_artifact
from prover.chain.deploy import deploy_bundle, layout_hash
from prover.chain.devnet import ensure_devnet, status, stop_devnet
from prover.chain.keys import devnet_signer
from prover.chain.market import encode_request_input
from prover.chain.worker import serve_requests
from prover.core import bundle as b
from prover.core.expected import load_bundle_inputs
from prover.core.progress import Progress, StepTimer
from prover.errors import ChainError

__all__ = ["run_chain_demo"]

REWARD_WEI = 10**16
#: Refer a case when the proven malignant logit is at least the benign one (fixed point 0).
REFERRAL_THRESHOLD = 0


def _client(url: str, account: int) -> ChainClient:
    known = [load_artifact("InferenceMarket"), load_artifact("ScreeningConsumer")]
    return ChainClient.connect(url, signer=devnet_signer(account), known_errors=known)


def run_chain_demo(
    bundle_dir: Path, sample: Path, progress: Progress | None = None, keep_devnet: bool = False
) -> dict[str, Any]:
    """Run the on-chain flow on the devnet for a compiled reference-model bundle and report it."""
    timer = StepTimer(progress)
    was_running = status().running
    with timer.step("devnet", "anvil, state in the data directory"):
        url = ensure_devnet()
    try:
        owner, provider, clinic = _client(url, 0), _client(url, 1), _client(url, 2)
        txs: dict[str, TxResult] = {}
        deployed = deploy_bundle(owner, bundle_dir, progress=progress)
        txs.update(deployed.transactions)
        bundle = b.load_bundle(Path(bundle_dir), check=b.CHAIN_FILES)
        registration = bytes.fromhex(deployed.registration_id[2:])
        consumer_art = load_artifact("ScreeningConsumer")
        # the clinic pins the registration (model id and the registrant it trusts), the verifier
        # and the instance layout of the bundle it trusts
        trusted = verifier_artifact(bundle.path(b.VERIFIER_JSON)).runtime_code_hash
        layout = layout_hash(bundle)
        with timer.step("deploy ScreeningConsumer", "the dApp"):
            txs["deploy_consumer"] = clinic.deploy(
                consumer_art,
                "deploy ScreeningConsumer",
                deployed.market,
                registration,
                trusted,
                layout,
                REFERRAL_THRESHOLD,
            )
        consumer = clinic.contract(consumer_art, str(txs["deploy_consumer"].contract_address))
        market = clinic.contract(load_artifact("InferenceMarket"), deployed.market)
        commitment, data = encode_request_input(bundle, load_bundle_inputs(bundle, sample))
        now = clinic.now()
        with timer.step("request screening", "escrows the reward"):
            fn = consumer.functions.requestScreening(registration, commitment, data, now + 3600)
            txs["request"] = clinic.transact(fn, "request screening", value=REWARD_WEI)
        request_id = int(
            events_of(market, "InferenceRequested", txs["request"])[0]["args"]["requestId"]
        )
        with tempfile.TemporaryDirectory(prefix="zkinfer-demo-") as tmp:
            outcomes = serve_requests(
                provider, deployed.market, [Path(bundle_dir)], workdir=Path(tmp), lock=True,
                once=True, progress=progress,
            )  # fmt: skip
        served = [o for o in outcomes if o.request_id == request_id]
        if not served or served[0].status != "fulfilled":
            detail = served[0].detail if served else "the worker did not see the request"
            raise ChainError(f"the provider could not settle request {request_id}: {detail}")
        txs.update({k: v for k, v in served[0].transactions.items()})
        screened = events_of(consumer, "CaseScreened", txs["fulfill"])
        margin = int(screened[0]["args"]["malignantMargin"]) if screened else None
        referred = bool(provider.call(consumer.functions.referred(request_id), "read referral"))
        with timer.step("provider withdraws"):
            txs["withdraw"] = provider.transact(market.functions.withdraw(), "withdraw")
        return {
            "rpc_url": url,
            "chain_id": owner.chain_id,
            "market": deployed.market,
            "verifier": deployed.verifier,
            "consumer": consumer.address,
            "request_id": request_id,
            "outputs": served[0].outputs,
            "malignant_margin_fixed_point": margin,
            "referred": referred,
            "callback_ran": bool(screened),
            "reward_wei": REWARD_WEI,
            "provider": provider.address,
            "transactions": {k: v.to_json() for k, v in txs.items()},
        }
    finally:
        if not was_running and not keep_devnet:
            stop_devnet()
