#!/usr/bin/env bash
# Runs the npm-installed forge in this Foundry project, offline, compiling with solc-js through
# scripts/solc.js (both set in foundry.toml: `offline = true`, `solc = "scripts/solc.js"`).
#   scripts/forge.sh build --sizes | scripts/forge.sh test | scripts/forge.sh snapshot --check
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/forge ]; then
  echo "forge.sh: node_modules/.bin/forge is missing; run \`npm ci\` in verifier_contracts/" >&2
  exit 3
fi
if [ "${1:-}" = "lint" ]; then
  # forge 1.7.1's `lint` writes ABI-only artifacts into out/ and marks them fresh in the cache, so a
  # later `forge test` silently skips those suites: lint in a throw-away out/ and cache instead.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  FOUNDRY_OUT="$scratch/out" FOUNDRY_CACHE_PATH="$scratch/cache" node_modules/.bin/forge "$@"
  exit
fi
exec node_modules/.bin/forge "$@"
