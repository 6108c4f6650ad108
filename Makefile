# The two commands of the README: `make demo` and `make test`. Both install what is missing first;
# a second run installs nothing (stamp files record what was installed from which manifest).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NPM_STAMP := verifier_contracts/node_modules/.installed
PYTEST_ARGS ?=

.PHONY: install demo test lint typecheck contracts pytest bench conformance clean

install: $(PY_STAMP) $(NPM_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch comes from the export extra, pinned to the CPU build that lies on disk (see README).
$(PY_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,export,chain,service,worker,bench]"
	touch $@

$(NPM_STAMP): verifier_contracts/package.json verifier_contracts/package-lock.json
	cd verifier_contracts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(VENV)/bin/zkinfer demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check prover tests scripts models
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

# The Foundry project: sizes under EIP-170, the forge suite (unit, fuzz, invariant, attacks on real
# ezkl verifiers and proofs), the committed gas snapshot, and the contract artifacts the Python
# package ships (they must match a fresh build of the sources).
contracts: install
	cd verifier_contracts && scripts/forge.sh fmt --check
	cd verifier_contracts && scripts/forge.sh build src --sizes
	cd verifier_contracts && scripts/forge.sh test
	cd verifier_contracts && scripts/forge.sh snapshot --check
	$(PY) scripts/export_contract_artifacts.py --check

# The PostgreSQL tests skip on a machine without PostgreSQL; here its absence is a failure.
pytest: install
	ZKINFER_REQUIRE_POSTGRES=1 $(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck contracts pytest

bench: install
	$(VENV)/bin/zkinfer bench

# Rewrites the conformance table in docs/models.md (the cases tests/test_conformance.py runs).
conformance: install
	$(PY) scripts/conformance_table.py

clean:
	rm -rf .zkinfer .pytest_cache .mypy_cache .ruff_cache
