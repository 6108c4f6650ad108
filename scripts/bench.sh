#!/usr/bin/env bash
# Measure every reference model and rewrite the table in docs/benchmarks.md (a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
make install
exec .venv/bin/zkinfer bench "$@"
