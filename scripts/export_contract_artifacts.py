"""Build the market contracts with forge and export the artifacts the Python chain layer loads.

Writes prover/chain/artifacts/<Contract>.json for InferenceMarket and the example consumers:
{"contractName", "abi", "bytecode", "deployedBytecode", "compiler", "source_sha256"}.

    .venv/bin/python scripts/export_contract_artifacts.py          # rebuild and write
    .venv/bin/python scripts/export_contract_artifacts.py --check  # exit 1 when stale

forge runs offline through verifier_contracts/scripts/forge.sh (solc-js 0.8.37), into a throw-away
out/ and cache/ so the project's own build folders are left alone. Bytecode carries no metadata
hash (foundry.toml: bytecode_hash = "none", cbor_metadata = false), so builds are reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "verifier_contracts"
ARTIFACTS = ROOT / "prover" / "chain" / "artifacts"
COMPILER = "solc 0.8.37 (solc-js)"

# contract name -> source path inside verifier_contracts/
CONTRACTS = {
    "InferenceMarket": "src/InferenceMarket.sol",
    "ScreeningConsumer": "src/examples/ScreeningConsumer.sol",
    "MinimalConsumer": "src/examples/MinimalConsumer.sol",
}


def build(scratch: Path) -> Path:
    """Compile src/ with forge into `scratch` and return the out/ folder."""
    env = dict(os.environ, FOUNDRY_OUT=str(scratch / "out"))
    env["FOUNDRY_CACHE_PATH"] = str(scratch / "cache")
    result = subprocess.run(
        [str(PROJECT / "scripts" / "forge.sh"), "build", "src"],
        check=False,
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"forge build failed (exit {result.returncode})")
    return scratch / "out"


def render(name: str, source: str, out: Path) -> str:
    forge_artifact = json.loads((out / Path(source).name / f"{name}.json").read_text())
    artifact = {
        "contractName": name,
        "abi": forge_artifact["abi"],
        "bytecode": forge_artifact["bytecode"]["object"],
        "deployedBytecode": forge_artifact["deployedBytecode"]["object"],
        "compiler": COMPILER,
        "source_sha256": hashlib.sha256((PROJECT / source).read_bytes()).hexdigest(),
    }
    for key in ("bytecode", "deployedBytecode"):
        if not artifact[key].startswith("0x") or len(artifact[key]) <= 2:
            raise SystemExit(f"{name}: forge produced no {key}")
    return json.dumps(artifact, indent=2) + "\n"


def _committed(name: str) -> str | None:
    path = ARTIFACTS / f"{name}.json"
    return path.read_text() if path.is_file() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed artifacts; write nothing"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="zkinfer-forge-") as tmp:
        out = build(Path(tmp))
        rendered = {name: render(name, source, out) for name, source in CONTRACTS.items()}

    if args.check:
        stale = [name for name, text in rendered.items() if _committed(name) != text]
        for name in stale:
            print(f"stale: {(ARTIFACTS / f'{name}.json').relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print("run: .venv/bin/python scripts/export_contract_artifacts.py", file=sys.stderr)
            return 1
        print(f"ok: {len(rendered)} contract artifacts match a fresh build", file=sys.stderr)
        return 0

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (ARTIFACTS / f"{name}.json").write_text(text)
        print(f"wrote {(ARTIFACTS / f'{name}.json').relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
