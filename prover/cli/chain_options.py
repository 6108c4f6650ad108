"""The typer options the on-chain commands share: where the chain is, who signs, which market,
the input and class names. One definition each, so that every command says the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ChainIdOpt", "InputOpt", "KeystoreOpt", "LabelsOpt", "MarketOpt", "RpcOpt"]

RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc-url",
        help="Ethereum JSON-RPC URL (default: ZKINFER_RPC_URL, else the local devnet, started if "
        "needed, and said so).",
    ),
]
ChainIdOpt = Annotated[
    int | None,
    typer.Option(
        "--chain-id", help="Refuse any other chain (exit 3; default: ZKINFER_CHAIN_ID, if set)."
    ),
]
KeystoreOpt = Annotated[
    Path | None,
    typer.Option(
        help="Encrypted JSON keystore; its password comes from ZKINFER_KEYSTORE_PASSWORD. "
        "Without it or ZKINFER_PRIVATE_KEY: on a local devnet chain (id 31337 or 1337, by default "
        "or by --rpc-url) anvil's public test account 0 signs; elsewhere a transaction is refused. "
        "`zkinfer devnet status` lists the test accounts."
    ),
]
LabelsOpt = Annotated[
    Path | None,
    typer.Option(
        help="JSON list of class names, one per output (e.g. models/<name>/labels.json): "
        "names the class of the largest proven output."
    ),
]
MarketOpt = Annotated[
    str | None, typer.Option(help="InferenceMarket address (default: the one deploy recorded).")
]
InputOpt = Annotated[
    Path,
    typer.Option(
        "--input",
        help="The input (ezkl JSON format); for a batch bundle the market settles by slots, ONE "
        "slot's input (one row of each input).",
    ),
]
