"""On-chain commands: ``devnet``, ``deploy``, ``request``, ``fulfill``, ``worker``.

Each one parses its options, connects (to ``--rpc-url``, or to the local devnet, started on
demand and announced), calls one function of :mod:`prover.chain` and renders the result. Keys come
only from ``ZKINFER_PRIVATE_KEY`` or ``--keystore`` (password in ``ZKINFER_KEYSTORE_PASSWORD``).
One rule, however the chain is reached: without either, on a local devnet chain (chain id 31337 or
1337) anvil's public test account 0 signs, and the command says so; on any other chain a command
that sends a transaction refuses.
"""

from __future__ import annotations

import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from prover.cli.chain_options import ChainIdOpt, InputOpt, KeystoreOpt, LabelsOpt, MarketOpt, RpcOpt
from prover.cli.output import (
    JsonOpt,
    command_progress,
    emit,
    json_line,
    run_command,
    stderr_console,
)
from prover.errors import UsageError
from prover.settings import get_settings

if TYPE_CHECKING:
    from prover.chain.client import ChainClient

__all__ = ["connect", "parse_wei", "register"]

devnet_app = typer.Typer(
    help="A local anvil chain whose state survives restarts.", no_args_is_help=True
)

_UNITS = {"wei": 0, "gwei": 9, "ether": 18, "eth": 18}


def parse_wei(text: str) -> int:
    """``"0.01"`` or ``"0.01ether"``, ``"5gwei"``, ``"1000wei"`` → wei."""
    value = text.strip().lower()
    unit = next((u for u in sorted(_UNITS, key=len, reverse=True) if value.endswith(u)), "ether")
    number = value.removesuffix(unit).strip() if value.endswith(unit) else value
    try:
        wei = Decimal(number) * (10 ** _UNITS[unit])
    except InvalidOperation:
        raise UsageError(f"{text!r} is not an amount (examples: 0.01, 0.01ether, 5gwei)") from None
    if wei != wei.to_integral_value() or wei < 0:
        raise UsageError(f"{text!r} is not a whole, non-negative number of wei")
    return int(wei)


def connect(
    rpc_url: str | None, chain_id: int | None, keystore: Path | None, *, signs: bool = True
) -> ChainClient:
    """A client for the command: the given RPC (else ``ZKINFER_RPC_URL``) or the devnet (started
    and announced if needed); ``chain_id`` (else ``ZKINFER_CHAIN_ID``) pins the chain.

    The key rule, the same for both: ``ZKINFER_PRIVATE_KEY`` or ``--keystore``; without either, on
    a local devnet chain, anvil's public account 0 signs (said on stderr). ``signs=False`` for
    commands that only read.
    """
    from prover.chain.client import ChainClient
    from prover.chain.contracts import load_artifact
    from prover.chain.devnet import ensure_devnet
    from prover.chain.keys import devnet_signer, load_signer

    note = stderr_console().print
    settings = get_settings()
    rpc_url = rpc_url or settings.rpc_url
    chain_id = settings.chain_id if chain_id is None else chain_id
    signer = load_signer(keystore) if signs else None
    if rpc_url is None:
        rpc_url = ensure_devnet(announce=lambda text: note(escape(text)))
    client = ChainClient.connect(
        rpc_url,
        expected_chain_id=chain_id,
        signer=signer,
        known_errors=[load_artifact("InferenceMarket"), load_artifact("ScreeningConsumer")],
    )
    if signs and signer is None and client.is_local_devnet:
        client.signer = devnet_signer(0)
        note(
            f"no key set: signing as devnet test account 0 ({client.signer.address}); set "
            "ZKINFER_PRIVATE_KEY to another of `zkinfer devnet status`'s accounts to act as "
            "someone else"
        )
    return client


def _tx_lines(c: Console, txs: dict[str, Any]) -> None:
    for name, tx in txs.items():
        c.print(f"  {name:<16} {tx['tx']}  gas {tx['gas_used']:,}")


@devnet_app.command("start")
def devnet_start(
    port: Annotated[
        int | None,
        typer.Option(help="Port (default: the last one while it is free, else a free one)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start the local anvil devnet (a no-op if it already runs); the port is remembered."""
    from prover.chain.devnet import start_devnet

    with run_command(as_json):
        s = start_devnet(port)
        emit(
            as_json,
            {"ok": True, **s.to_json()},
            lambda c: c.print(f"devnet {s.rpc_url} (chain {s.chain_id}, block {s.block})"),
        )


@devnet_app.command("stop")
def devnet_stop(as_json: JsonOpt = False) -> None:
    """Stop the devnet; its state is written to the data directory first."""
    from prover.chain.devnet import stop_devnet

    with run_command(as_json):
        stopped = stop_devnet()
        emit(
            as_json,
            {"ok": True, "stopped": stopped},
            lambda c: c.print("stopped" if stopped else "not running"),
        )


@devnet_app.command("status")
def devnet_status(as_json: JsonOpt = False) -> None:
    """Show whether the devnet runs, its RPC URL, chain id and block, and its test accounts."""
    from prover.chain.devnet import status

    with run_command(as_json):
        s = status()

        def human(c: Console) -> None:
            if s.running:
                c.print(f"running {s.rpc_url} (pid {s.pid}, chain {s.chain_id}, block {s.block})")
            else:
                c.print("not running")
            c.print(f"state {escape(str(s.state_file))}")
            c.print("test accounts (public keys of anvil's mnemonic, for the devnet only):")
            for a in s.to_json()["accounts"]:
                c.print(f"  {a['index']}  {a['address']}  ZKINFER_PRIVATE_KEY={a['private_key']}")

        emit(as_json, {"ok": True, **s.to_json()}, human)


def deploy_cmd(
    bundle: Annotated[Path, typer.Argument(help="The bundle folder (from compile).")],
    rpc_url: RpcOpt = None,
    chain_id: ChainIdOpt = None,
    keystore: KeystoreOpt = None,
    market: MarketOpt = None,
    allow_unsafe_srs: Annotated[
        bool,
        typer.Option("--allow-unsafe-srs", help="Allow a dev-unsafe bundle on a non-devnet chain."),
    ] = False,
    lock_stake: Annotated[
        str, typer.Option(help="Stake a provider posts to lock a request.")
    ] = "0.01ether",
    lock_duration: Annotated[int, typer.Option(help="Seconds a lock lasts.")] = 600,
    as_json: JsonOpt = False,
) -> None:
    """Deploy the bundle's verifier and the market (once each) and register the model."""
    from prover.chain.deploy import DeployOptions, deploy_bundle

    with run_command(as_json):
        options = DeployOptions(market, allow_unsafe_srs, parse_wei(lock_stake), lock_duration)
        client = connect(rpc_url, chain_id, keystore)
        result = deploy_bundle(client, bundle, options, command_progress())
        doc = result.to_json()

        def human(c: Console) -> None:
            c.print(f"chain    {result.chain_id}")
            c.print(f"model    {result.model_id}")
            c.print(f"registration {result.registration_id}  (registrant {result.registrant})")
            c.print(
                f"verifier {result.verifier}" + ("  (reused)" if result.reused["verifier"] else "")
            )
            c.print(f"market   {result.market}" + ("  (reused)" if result.reused["market"] else ""))
            _tx_lines(c, doc["transactions"])
            for w in result.warnings:
                c.print(f"[yellow]warning: {escape(w)}[/yellow]")

        emit(as_json, {"ok": True, **doc}, human)


def request_cmd(
    bundle: Annotated[Path, typer.Argument(help="The bundle of the model to run.")],
    input: InputOpt,
    reward: Annotated[
        str, typer.Option(help="Escrowed reward (e.g. 0.01ether, 5gwei).")
    ] = "0.01ether",
    deadline: Annotated[
        int, typer.Option(help="Seconds from now until a refund is possible.")
    ] = 3600,
    consumer: Annotated[
        str | None,
        typer.Option(
            help="Contract to call back with the outputs; it must accept requests made by your "
            "account (like MinimalConsumer for its owner). A contract that accepts only its own "
            "requests (ScreeningConsumer) must request itself: see `zkinfer encode-request`."
        ),
    ] = None,
    registrant: Annotated[
        str | None,
        typer.Option(
            help="The account that registered the model, whose registration you trust "
            "(default: the one `zkinfer deploy` recorded on this chain)."
        ),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            help="Wait up to this many seconds for the request to settle and print its "
            "proven outputs (exit 3 if still open)."
        ),
    ] = None,
    labels: LabelsOpt = None,
    rpc_url: RpcOpt = None,
    chain_id: ChainIdOpt = None,
    keystore: KeystoreOpt = None,
    market: MarketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Request a proven inference on chain, escrowing the reward (--wait: and its result)."""
    from prover.chain.deploy import find_market
    from prover.chain.market import request_inference
    from prover.chain.results import load_labels, wait_for_result
    from prover.cli.chain_result_cmds import print_state

    with run_command(as_json):
        names = load_labels(labels)
        client = connect(rpc_url, chain_id, keystore)
        address = find_market(client, market)
        result = request_inference(
            client,
            address,
            bundle,
            input,
            reward_wei=parse_wei(reward),
            deadline_s=deadline,
            consumer=consumer,
            registrant=registrant,
        )
        doc = result.to_json()
        if wait is None:

            def human(c: Console) -> None:
                c.print(f"request {result.request_id} on market {address}")
                c.print(f"  tx {result.tx.tx_hash}  gas {result.tx.gas_used:,}")

            emit(as_json, {"ok": True, "market": address, **doc}, human)
            return
        stderr_console().print(
            f"request {result.request_id} on market {address}; waiting up to {wait:g} s for a "
            "provider to settle it"
        )
        state = wait_for_result(
            client, address, result.request_id, timeout_s=wait, labels=names
        ).to_json()
        emit(
            as_json,
            {"ok": True, "market": address, **doc, "result": state},
            lambda c: print_state(c, state),
        )


def fulfill_cmd(
    request_id: Annotated[int, typer.Argument(help="The request to settle.")],
    bundle: Annotated[Path, typer.Option("--bundle", help="The bundle of the request's model.")],
    proof: Annotated[
        Path | None,
        typer.Option(help="A proof to submit (default: prove the request's input now)."),
    ] = None,
    from_block: Annotated[
        int, typer.Option(help="Search the request's event from this block (hosted RPCs limit it).")
    ] = 0,
    rpc_url: RpcOpt = None,
    chain_id: ChainIdOpt = None,
    keystore: KeystoreOpt = None,
    market: MarketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove a request's input (or take --proof) and settle the request on chain."""
    import tempfile

    from prover.chain.deploy import find_market
    from prover.chain.market import fulfill_request, prove_request, read_request, require_open

    with run_command(as_json), tempfile.TemporaryDirectory(prefix="zkinfer-fulfill-") as tmp:
        client = connect(rpc_url, chain_id, keystore)
        address = find_market(client, market)
        if proof is None:
            request = read_request(client, address, request_id, from_block=from_block)
            require_open(client, request)  # before seconds of proving, not after
            proof = prove_request(bundle, request, Path(tmp) / "proof.json", command_progress())
        result = fulfill_request(client, address, bundle, request_id, proof)
        doc = result.to_json()

        def human(c: Console) -> None:
            c.print(f"request {request_id} settled: outputs {result.outputs}")
            c.print(f"  tx {result.tx.tx_hash}  gas {result.tx.gas_used:,}")
            if result.callback_failed:
                c.print(
                    "[yellow]the consumer's callback failed (settlement still happened)[/yellow]"
                )

        emit(as_json, {"ok": True, "market": address, **doc}, human)


WORKER_HELP = (
    "Serve requests: prove each one and hand the proof over.\n\n"
    "Required: exactly one of --api URL, to lease requests from a zkinfer service and submit "
    "the proofs to it (the provider key comes from ZKINFER_PROVIDER_KEY; bundles are "
    "downloaded, checked and cached under ZKINFER_CACHE_DIR); or --chain and at least one --bundle "
    "DIR, to serve the on-chain market's requests for your bundles and fulfil them (each "
    "settled request's line carries the balance the market owes you: `zkinfer withdraw` "
    "collects it)."
)


def worker_cmd(
    bundle: Annotated[
        list[Path] | None,
        typer.Option("--bundle", help="--chain: a bundle to serve (repeatable, required)."),
    ] = None,
    chain: Annotated[bool, typer.Option("--chain", help="Serve on-chain market requests.")] = False,
    api: Annotated[
        str | None,
        typer.Option(
            "--api",
            metavar="URL",
            help="Lease work from a zkinfer service (key in ZKINFER_PROVIDER_KEY).",
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="--api: serve only this model id (repeatable; default any)."),
    ] = None,
    wait: Annotated[
        float, typer.Option(help="--api: seconds one claim waits for work (long poll).")
    ] = 10.0,
    once: Annotated[bool, typer.Option(help="Serve what is pending, then exit.")] = False,
    lock: Annotated[
        bool, typer.Option(help="Lock each request (posting the stake) before proving.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    from_block: Annotated[
        int | None, typer.Option(help="Scan request events from this block (default: saved).")
    ] = None,
    max_stake: Annotated[
        str, typer.Option(help="Never lock a request whose model asks a larger stake.")
    ] = "0.1ether",
    min_reward: Annotated[
        str, typer.Option(help="Skip requests that pay less than this (e.g. 0.001ether, 5gwei).")
    ] = "0.001ether",
    cost_margin: Annotated[
        float,
        typer.Option(
            help="Skip requests whose reward is less than this multiple of the estimated gas "
            "cost of serving them (fulfil, lock, consumer callback) at the current gas price."
        ),
    ] = 1.5,
    refuse_consumers: Annotated[
        bool,
        typer.Option(
            "--refuse-consumers", help="Skip requests that name a consumer contract to call back."
        ),
    ] = False,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where proofs are written (--chain; --api keeps proofs in memory)."),
    ] = None,
    rpc_url: RpcOpt = None,
    chain_id: ChainIdOpt = None,
    keystore: KeystoreOpt = None,
    market: MarketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve requests: prove each one and hand the proof over (see WORKER_HELP)."""
    if (api is None) == (not chain):
        with run_command(as_json):
            raise UsageError(
                "pass exactly one of --api URL (serve a zkinfer service) or --chain (serve the "
                "on-chain market, with --bundle)"
            )
    if api is not None:
        from prover.cli.worker_api_cmd import run_api_worker

        if bundle or lock:
            with run_command(as_json):
                raise UsageError(
                    "--bundle and --lock are for --chain; with --api the worker downloads the "
                    "bundles the service names"
                )

        run_api_worker(api, once=once, models=model or [], wait_s=wait, as_json=as_json)
        return

    from prover.chain.deploy import find_market
    from prover.chain.results import owed_wei
    from prover.chain.worker import WorkerLimits, WorkerOutcome, serve_requests
    from prover.chain.worker_policy import WorkerPolicy

    bundle = bundle or []
    stop = threading.Event()

    def report(o: WorkerOutcome) -> None:
        doc = o.to_json()
        if o.status == "fulfilled":
            doc["owed_wei"] = owed_wei(client, address, client.address)
        if as_json:
            json_line(doc)
        else:
            c = stderr_console()
            c.print(
                f"request {o.request_id}: {o.status} {escape(o.detail)}"
                + (f" outputs {o.outputs}" if o.outputs else "")
                + (f"; owed {doc['owed_wei'] / 10**18:g} ETH" if "owed_wei" in doc else "")
            )

    with run_command(as_json):
        if not cost_margin >= 0:  # also refuses NaN
            raise UsageError(f"--cost-margin must be a number of at least 0, not {cost_margin}")
        policy = WorkerPolicy(parse_wei(min_reward), cost_margin, refuse_consumers)
        limits = WorkerLimits(max_stake_wei=parse_wei(max_stake), policy=policy)
        client = connect(rpc_url, chain_id, keystore)
        address = find_market(client, market)
        owed = owed_wei(client, address, client.address)
        stderr_console().print(
            f"serving market {address} on chain {client.chain_id} as {client.address} "
            f"(owed {owed / 10**18:g} ETH: `zkinfer withdraw` collects it)"
        )
        try:
            serve_requests(
                client,
                address,
                bundle,
                workdir=workdir or get_settings().worker_cache_dir / "proofs",
                lock=lock,
                once=once,
                poll_s=poll,
                progress=command_progress(),
                report=report,
                stop=stop,
                from_block=from_block,
                limits=limits,
            )
        except KeyboardInterrupt:
            stop.set()


def register(app: typer.Typer) -> None:
    """Add the on-chain commands to the main CLI."""
    app.add_typer(devnet_app, name="devnet")
    app.command("deploy")(deploy_cmd)
    app.command("request")(request_cmd)
    app.command("fulfill")(fulfill_cmd)
    app.command("worker", help=WORKER_HELP)(worker_cmd)
    from prover.cli import chain_result_cmds

    chain_result_cmds.register(app)
