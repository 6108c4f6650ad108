"""``zkinfer serve``: the HTTP service, its database and its queue worker."""

from __future__ import annotations

from typing import Annotated

import typer

from prover.cli.output import JsonOpt, json_line, run_command, stderr_console

__all__ = ["serve_cmd"]


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    dev: Annotated[
        bool, typer.Option("--dev", help="Development mode: built-in keys, private webhooks.")
    ] = False,
    dev_srs: Annotated[
        bool, typer.Option("--dev-srs", help="Compile models with an UNSAFE development SRS.")
    ] = False,
    queue_worker: Annotated[
        bool,
        typer.Option(
            "--queue-worker",
            help="Run only the queue worker (verifying proofs, reaper, webhooks, compiles).",
        ),
    ] = False,
    no_queue_worker: Annotated[
        bool,
        typer.Option(
            "--no-queue-worker", help="Serve the API without starting a queue worker beside it."
        ),
    ] = False,
    chain_id: Annotated[
        int | None,
        typer.Option(
            "--chain-id",
            min=1,
            help="Show the verifier and market that `zkinfer deploy` recorded for this chain "
            "with each model (ZKINFER_CHAIN_ID).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve proven inference over HTTP (keys in ZKINFER_API_KEYS / ZKINFER_PROVIDER_KEYS).

    Without ZKINFER_DATABASE_URL an embedded PostgreSQL runs under ZKINFER_HOME (the data
    directory). A queue worker (verifying submitted proofs, reaping leases, webhooks, compiles)
    runs as a child process unless --no-queue-worker. Endpoints: docs/api.md; every variable:
    docs/configuration.md.
    """
    from prover.service import runner
    from prover.settings import DEV_CLIENT_KEY, DEV_PROVIDER_KEY, get_settings

    with run_command(as_json):
        overrides: dict[str, object] = {
            k: True for k, v in (("dev", dev), ("dev_srs", dev_srs)) if v
        }
        if chain_id is not None:
            overrides["chain_id"] = chain_id
        settings = get_settings().model_copy(update=overrides)
        settings.check_for_serving()
        url, server = runner.database_url(settings)
        if queue_worker:
            runner.run_queue_worker(settings, url)
            return
        applied = runner.migrate(url)
        if settings.reference_models:
            import asyncio

            from prover.core.paths import repo_root

            models = repo_root() / "models"
            if models.is_dir():
                asyncio.run(runner.register_reference_models(settings, url, models))
        child = None if no_queue_worker else runner.spawn_queue_worker(settings, url)
        if as_json:
            json_line(
                {
                    "ok": True,
                    "url": f"http://{host}:{port}",
                    "migrations": applied,
                    "queue_worker_pid": None if child is None else child.pid,
                }
            )
        else:
            stderr_console().print(f"zkinfer service on http://{host}:{port}")
        if settings.dev:  # name only the built-in keys, never configured ones
            builtin = [
                f"{kind} key {key}"
                for kind, key, configured in (
                    ("client", DEV_CLIENT_KEY, settings.api_keys),
                    ("provider", DEV_PROVIDER_KEY, settings.provider_keys),
                )
                if not configured
            ]
            stderr_console().print(
                "[bold red]development mode[/bold red]: http and private webhook URLs allowed"
                + "".join(f"; {b}" for b in builtin)
            )
        try:
            runner.run_api(settings, url, host=host, port=port)
        finally:
            if child is not None:
                runner.stop(child)
            del server
