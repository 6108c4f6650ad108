"""verifier_contracts/scripts/forge.sh fails when forge fails.

`make contracts` (fmt --check, build, test, snapshot --check) trusts forge.sh's exit status. The
npm launcher (@foundry-rs/forge 1.7.1 bin.mjs) spawns the real binary and does not pass its exit
status on, so forge.sh runs the platform binary itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import REPO

FORGE_SH = REPO / "verifier_contracts" / "scripts" / "forge.sh"


def test_forge_sh_fails_when_fmt_check_fails(tmp_path: Path) -> None:
    unformatted = tmp_path / "Unformatted.sol"
    unformatted.write_text("contract   X{function f( ) public{}}\n")
    run = subprocess.run(
        [str(FORGE_SH), "fmt", "--check", str(unformatted)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "contract X" in run.stdout + run.stderr  # forge did find the file unformatted
    assert run.returncode != 0, "forge.sh exited 0 although `forge fmt --check` failed"
