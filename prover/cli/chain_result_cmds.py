"""On-chain commands for after a request: ``result``, ``withdraw``, and ``encode-request`` (what a
consumer contract passes and pins, without a transaction)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from prover.cli.chain_cmds import connect
from prover.cli.chain_options import ChainIdOpt, InputOpt, KeystoreOpt, LabelsOpt, MarketOpt, RpcOpt
from prover.cli.output import JsonOpt, emit, format_outputs, run_command

__all__ = ["print_state", "register"]


def print_state(c: Console, doc: dict[str, object]) -> None:
    """A request's state as people read it."""
    c.print(f"request {doc['request_id']}: {doc['status']}")
    outputs = doc["outputs"]
    if isinstance(outputs, list):
        c.print(
            f"  proven outputs {format_outputs([outputs])}  (fixed point "
            f"{doc['outputs_fixed_point']} / 2^{doc['output_scale']})"
        )
    if doc["label"] is not None:
        c.print(f"  proven class   {doc['label']}")
    c.print(f"  reward {doc['reward_wei']} wei   requester {doc['requester']}")
    if doc["consumer"]:
        c.print(f"  consumer {doc['consumer']}")
    if doc["locked_by"]:
        c.print(f"  locked by {doc['locked_by']}")


def result_cmd(
    request_id: Annotated[int, typer.Argument(help="The request id (from `zkinfer request`).")],
    labels: LabelsOpt = None,
    rpc_url: RpcOpt = None,
    chain_id: ChainIdOpt = None,
    market: MarketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a request's status and its proven outputs (as floats, and the class with --labels)."""
    from prover.chain.deploy import find_market
    from prover.chain.results import load_labels, read_result

    with run_command(as_json):
        names = load_labels(labels)
        client = connect(rpc_url, chain_id, None, signs=False)
        address = find_market(client, market)
        doc = read_result(client, address, request_id, names).to_json()
        emit(as_json, {"ok": True, "market": address, **doc}, lambda c: print_state(c, doc))


def withdraw_cmd(
    rpc_url: RpcOpt = None,
    chain_id: ChainIdOpt = None,
    keystore: KeystoreOpt = None,
    market: MarketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw everything the market owes your account (rewards, returned stakes, refunds)."""
    from prover.chain.deploy import find_market
    from prover.chain.results import withdraw

    with run_command(as_json):
        client = connect(rpc_url, chain_id, keystore)
        address = find_market(client, market)
        amount, tx = withdraw(client, address)
        doc = {
            "ok": True,
            "market": address,
            "account": client.address,
            "withdrawn_wei": amount,
            "transaction": tx.to_json() if tx else None,
        }

        def human(c: Console) -> None:
            if tx is None:
                c.print(f"market {address} owes {client.address} nothing")
            else:
                c.print(f"withdrew {amount / 10**18:g} ETH ({amount} wei) to {client.address}")
                c.print(f"  tx {tx.tx_hash}  gas {tx.gas_used:,}")

        emit(as_json, doc, human)


def encode_request_cmd(
    bundle: Annotated[Path, typer.Argument(help="The bundle of the model.")],
    input: InputOpt,
    registrant: Annotated[
        str | None,
        typer.Option(
            help="The account that registered the model, whose registration you pin (default: "
            "the one `zkinfer deploy` recorded; then the chain is contacted)."
        ),
    ] = None,
    rpc_url: RpcOpt = None,
    chain_id: ChainIdOpt = None,
    market: MarketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print what a consumer contract passes to requestInference for this input, and what it pins
    (registration id, verifier code hash, layout hash, scales); sends no transaction."""
    from web3 import Web3

    from prover.chain.deploy import Deployments, check_registration, find_market
    from prover.chain.deploy import registration_id as reg_id
    from prover.chain.results import encode_request
    from prover.core import bundle as b
    from prover.errors import UsageError

    with run_command(as_json):
        address = market
        if registrant is None:  # the recorded registration: check it on chain as request does
            client = connect(rpc_url, chain_id, None, signs=False)
            address = find_market(client, market)
            loaded = b.load_bundle(bundle, check=b.CHAIN_FILES)
            registrant = Deployments(client.chain_id).get("registrants", loaded.model_id)
            if registrant is None:
                raise UsageError(
                    "no registration of this model is recorded for this chain: pass --registrant"
                )
            check_registration(client, address, loaded, reg_id(registrant, loaded.model_id))
        elif not Web3.is_address(registrant):
            raise UsageError(f"--registrant {registrant!r} is not an address (0x and 40 hex)")
        doc = encode_request(bundle, input, Web3.to_checksum_address(registrant), address)

        def human(c: Console) -> None:
            for key in ("registration_id", "registrant", "model_id", "market",
                        "verifier_code_hash", "layout_hash", "input_commitment",
                        "input_scales", "output_scales", "input_data"):  # fmt: skip
                c.print(f"{key:<18} {doc[key]}", soft_wrap=True)

        emit(as_json, {"ok": True, **doc}, human)


def register(app: typer.Typer) -> None:
    """Add these commands to the main CLI."""
    app.command("result")(result_cmd)
    app.command("withdraw")(withdraw_cmd)
    app.command("encode-request")(encode_request_cmd)
