#!/usr/bin/env bash
# Retrain and re-export every reference model (deterministic: reruns give identical files).
set -euo pipefail
cd "$(dirname "$0")/.."
make install
for dir in models/*/; do
  name=$(basename "$dir")
  [ -f "$dir/model.py" ] || continue
  echo "== $name"
  .venv/bin/python -m "models.$name.model"
done
