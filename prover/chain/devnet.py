"""A local anvil devnet whose state lives in the data directory, so deployments survive a restart.

``$ZKINFER_HOME/devnet/`` holds ``state.json`` (anvil dumps the chain there every few seconds and on
exit, and loads it on start), ``devnet.json`` (pid, port, RPC URL of the running node), ``port``
(the port of the last start, reused by the next one while it is free, so copied RPC URLs keep
working) and ``anvil.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from eth_account import Account

from prover.chain.keys import DEVNET_KEYS
from prover.core.paths import repo_root
from prover.errors import ChainError, ToolchainError
from prover.settings import get_settings

__all__ = [
    "DEVNET_CHAIN_ID",
    "DevnetStatus",
    "anvil_binary",
    "devnet_dir",
    "ensure_devnet",
    "start_devnet",
    "status",
    "stop_devnet",
    "temporary_anvil",
    "test_accounts",
]

DEVNET_CHAIN_ID = 31337
_STATE_INTERVAL_S = 2
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class DevnetStatus:
    """Whether the devnet runs, and where."""

    running: bool
    rpc_url: str | None
    pid: int | None
    chain_id: int | None
    block: int | None
    state_file: Path

    def to_json(self) -> dict[str, Any]:
        """The status as ``zkinfer devnet status --json`` prints it."""
        return {
            "running": self.running,
            "rpc_url": self.rpc_url,
            "pid": self.pid,
            "chain_id": self.chain_id,
            "block": self.block,
            "state_file": str(self.state_file),
            "accounts": test_accounts(),
        }


def test_accounts() -> list[dict[str, Any]]:
    """anvil's public test accounts (funded with 10,000 ETH on the devnet; their keys are
    published with Foundry, so they are for the devnet only)."""
    return [
        {"index": i, "address": Account.from_key(k).address, "private_key": k}
        for i, k in enumerate(DEVNET_KEYS)
    ]


def devnet_dir() -> Path:
    """``$ZKINFER_HOME/devnet``, created if needed."""
    path = get_settings().devnet_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def anvil_binary() -> str:
    """anvil: ``$ZKINFER_ANVIL``, the checkout's npm copy, or one on PATH.

    Of the npm copy, the platform binary itself is preferred to the ``.bin/anvil`` Node wrapper,
    so that the process zkinfer starts and stops is anvil, not a launcher around it.
    """
    configured = get_settings().anvil
    candidates = [str(configured)] if configured else []
    npm = repo_root() / "verifier_contracts" / "node_modules"
    candidates += sorted(str(p) for p in npm.glob("@foundry-rs/anvil-*/bin/anvil"))
    candidates.append(str(npm / ".bin" / "anvil"))
    candidates.append(shutil.which("anvil") or "")
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ToolchainError(
        "anvil not found: run `make install` (npm installs it into verifier_contracts/), "
        "install Foundry, or set ZKINFER_ANVIL to an anvil binary"
    )


def _rpc(url: str, method: str, timeout: float = 2.0) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())["result"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process still "exists": reap it if it has exited
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def _signal_group(pid: int, sig: int) -> None:
    """Signal the devnet's process group (it was started in a session of its own)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def status() -> DevnetStatus:
    """Look at the recorded devnet: its process and whether its RPC answers."""
    folder = devnet_dir()
    state = folder / "state.json"
    info_file = folder / "devnet.json"
    try:
        info = json.loads(info_file.read_text())
        pid, url = int(info["pid"]), str(info["rpc_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return DevnetStatus(False, None, None, None, None, state)
    if not _alive(pid):
        return DevnetStatus(False, url, pid, None, None, state)
    try:
        chain_id = int(_rpc(url, "eth_chainId"), 16)
        block = int(_rpc(url, "eth_blockNumber"), 16)
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return DevnetStatus(False, url, pid, None, None, state)
    return DevnetStatus(True, url, pid, chain_id, block, state)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(args: list[str], log: int | IO[bytes]) -> subprocess.Popen[bytes]:
    """Start anvil in a session of its own, so that stopping it signals all it started."""
    return subprocess.Popen(
        [anvil_binary(), "--host", "127.0.0.1", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_until_ready(proc: subprocess.Popen[bytes], url: str, log_hint: str) -> None:
    """Return once anvil answers on ``url``; :class:`ChainError` if it exits or never does."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ChainError(f"anvil exited at start (code {proc.returncode}){log_hint}")
        try:
            _rpc(url, "eth_chainId", timeout=0.5)
            return
        except (OSError, ValueError, urllib.error.URLError):
            time.sleep(0.1)
    _signal_group(proc.pid, signal.SIGKILL)
    raise ChainError(f"anvil did not answer on {url} within {_START_TIMEOUT_S:.0f} s")


@contextmanager
def temporary_anvil(
    chain_id: int = DEVNET_CHAIN_ID, *, unlimited_code_size: bool = False
) -> Iterator[str]:
    """A throwaway anvil (no state) on a free localhost port; yields its RPC URL and stops it,
    with everything it started, on exit. For tests and measurements. ``unlimited_code_size``
    lifts EIP-170's 24,576-byte limit on deployed code (no public chain does)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["--port", str(port), "--chain-id", str(chain_id), "--silent"]
    proc = _spawn(
        [*args, "--disable-code-size-limit"] if unlimited_code_size else args, subprocess.DEVNULL
    )
    try:
        _wait_until_ready(proc, url, "")
        yield url
    finally:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as anvil binds: a port the last devnet just left (TIME_WAIT) is free for it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_devnet(port: int | None = None) -> DevnetStatus:
    """Start anvil with the persisted state (no-op if it already runs) on ``port``, else on the
    port of the last start while it is free, else on a free one; the port is remembered."""
    current = status()
    if current.running:
        if port is not None and current.rpc_url and not current.rpc_url.endswith(f":{port}"):
            raise ChainError(
                f"the devnet already runs at {current.rpc_url}: `zkinfer devnet stop` it first "
                f"to move it to port {port}"
            )
        return current
    folder = devnet_dir()
    if port is None:
        with contextlib.suppress(OSError, ValueError):
            last = int((folder / "port").read_text())
            port = last if _port_is_free(last) else None
    port = port or _free_port()
    (folder / "port").write_text(str(port))
    url = f"http://127.0.0.1:{port}"
    state = ["--state", str(folder / "state.json"), "--state-interval", str(_STATE_INTERVAL_S)]
    with (folder / "anvil.log").open("ab") as log:
        proc = _spawn(["--port", str(port), "--chain-id", str(DEVNET_CHAIN_ID), *state], log)
    (folder / "devnet.json").write_text(json.dumps({"pid": proc.pid, "rpc_url": url}))
    _wait_until_ready(proc, url, f"; see {folder / 'anvil.log'}")
    return status()


def stop_devnet(timeout_s: float = 15.0) -> bool:
    """Stop the devnet, letting anvil write its state; ``False`` if none was running."""
    current = status()
    info_file = devnet_dir() / "devnet.json"
    if current.pid is None or not _alive(current.pid):
        info_file.unlink(missing_ok=True)
        return False
    _signal_group(current.pid, signal.SIGTERM)  # anvil writes its state on SIGTERM
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(current.pid):
        time.sleep(0.1)
    if _alive(current.pid):
        _signal_group(current.pid, signal.SIGKILL)
    info_file.unlink(missing_ok=True)
    return True


def ensure_devnet(announce: Callable[[str], None] | None = None) -> str:
    """The devnet's RPC URL, starting it when it is not running (and then telling ``announce``)."""
    was_running = status().running
    current = start_devnet()
    if not was_running and announce is not None:
        announce(
            f"started the local devnet at {current.rpc_url} (chain {current.chain_id}); it keeps "
            "running (`zkinfer devnet stop` stops it; `zkinfer devnet start` can pin a port)"
        )
    if current.rpc_url is None:  # status() found the node but lost its record
        raise ChainError(f"the devnet runs but {devnet_dir() / 'devnet.json'} names no RPC URL")
    return current.rpc_url
