"""``zkinfer worker --api URL``: prove leased requests for a zkinfer service.

The provider key comes only from ``ZKINFER_PROVIDER_KEY`` (never an option: it would show in the
process list) and is never printed. SIGTERM or a first Ctrl-C finishes the proof in progress and
submits it (or gives the lease back), then exits 0; a second one abandons the proof.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from rich.markup import escape

from prover.cli.output import (
    command_progress,
    format_outputs,
    json_line,
    run_command,
    stderr_console,
)
from prover.settings import get_settings
from prover.worker import LeaseOutcome, ServiceClient, WorkerOptions, run_worker

__all__ = ["run_api_worker"]


def _install_signals(stop: threading.Event, abandon: threading.Event) -> None:
    def handler(signum: int, _: FrameType | None) -> None:
        if stop.is_set():
            abandon.set()
            stderr_console().print("[yellow]abandoning the proof in progress[/yellow]")
            return
        stop.set()
        stderr_console().print(
            f"[yellow]{signal.Signals(signum).name}: finishing the current lease, then "
            "exiting (send it again to abandon the proof)[/yellow]"
        )

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_api_worker(
    api: str,
    *,
    once: bool,
    models: list[str],
    wait_s: float,
    as_json: bool,
) -> None:
    """Serve the service at ``api`` until stopped (or one claim with ``once``)."""

    def report(o: LeaseOutcome) -> None:
        if as_json:
            json_line(o.to_json())
        else:
            text = f"inference {o.inference_id}: {o.status}"
            if o.batch is not None:
                ids = ", ".join(i for i in o.batch if i is not None)
                text = f"batch of {len(o.batch)} slots ({ids}): {o.status}"
            if o.prove_s is not None:
                text += f" (prove {o.prove_s:.1f} s)"
            if o.detail:
                text += f": {escape(o.detail)}"
            if o.outputs:
                text += f"; outputs {format_outputs(o.outputs)}"
            stderr_console().print(text)

    stop, abandon = threading.Event(), threading.Event()
    with run_command(as_json):
        key = get_settings().provider_key
        client = ServiceClient(api, "" if key is None else key.get_secret_value())
        _install_signals(stop, abandon)
        stderr_console().print(f"serving {escape(str(client.base_url))} (lease work over HTTP)")
        with client:
            run_worker(
                client,
                options=WorkerOptions(once=once, models=models, wait_s=wait_s),
                progress=command_progress(),
                report=report,
                stop=stop,
                abandon=abandon,
            )
