#!/usr/bin/env bash
# Runs the npm-installed forge in this Foundry project, offline, compiling with solc-js through
# scripts/solc.js (both set in foundry.toml: `offline = true`, `solc = "scripts/solc.js"`).
#   scripts/forge.sh build --sizes | scripts/forge.sh test | scripts/forge.sh snapshot --check
set -euo pipefail
cd "$(dirname "$0")/.."
# The platform binary that npm installed, not the node launcher node_modules/.bin/forge: that
# launcher (@foundry-rs/forge 1.7.1) does not pass forge's exit status on, so a failing
# `forge test` or `snapshot --check` would exit 0 (tests/test_forge_exit.py).
forge=""
for candidate in node_modules/@foundry-rs/forge-*/bin/forge; do
  if [ -x "$candidate" ]; then forge=$candidate; break; fi
done
if [ -z "$forge" ]; then
  echo "forge.sh: node_modules/@foundry-rs/forge-<platform>/bin/forge is missing; run \`npm ci\` in verifier_contracts/" >&2
  exit 3
fi
if [ "${1:-}" = "lint" ]; then
  # forge 1.7.1's `lint` writes ABI-only artifacts into out/ and marks them fresh in the cache, so a
  # later `forge test` silently skips those suites: lint in a throw-away out/ and cache instead.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  FOUNDRY_OUT="$scratch/out" FOUNDRY_CACHE_PATH="$scratch/cache" "$forge" "$@"
  exit
fi
exec "$forge" "$@"
